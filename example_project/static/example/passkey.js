// The passkey page: django-allauth's headless API (app client) on jwt_sessions sessions.
// The page keeps allauth's session token and the jwt_sessions pair in memory, as a native
// app would; the project's API takes the access token (Authorization: Bearer).
const ALLAUTH = "/_allauth/app/v1";
const state = {sessionToken: null, access: null, refresh: null};

/** One call of allauth's headless API; keeps what its `meta` hands out. */
async function allauth(method, path, body) {
  const headers = {"Content-Type": "application/json"};
  if (state.sessionToken) headers["X-Session-Token"] = state.sessionToken;
  const response = await fetch(ALLAUTH + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  const meta = answer.meta || {};
  if (meta.session_token) state.sessionToken = meta.session_token;
  if (meta.access_token) {
    state.access = meta.access_token;
    state.refresh = meta.refresh_token;
  }
  return {status: response.status, answer};
}

function expectOk({status, answer}, what) {
  if (status !== 200) {
    const errors = (answer.errors || []).map((error) => error.message).join(" ");
    throw new Error(`${what} failed (${status})${errors ? ": " + errors : ""}`);
  }
  return answer;
}

export const signUp = async (username, password) =>
  expectOk(await allauth("POST", "/auth/signup", {username, password}), "Sign-up");

/** Adding an authenticator needs a recent reauthentication: the password, here. */
export const confirmPassword = async (password) =>
  expectOk(await allauth("POST", "/auth/reauthenticate", {password}), "Password check");

export async function addPasskey(name) {
  const options = expectOk(
    await allauth("GET", "/account/authenticators/webauthn?passwordless"), "Passkey options");
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(
    options.data.creation_options.publicKey);
  const credential = await navigator.credentials.create({publicKey});
  return expectOk(await allauth("POST", "/account/authenticators/webauthn",
                                {name, passwordless: true, credential: credential.toJSON()}),
                  "Adding the passkey");
}

/** Step-up: allauth's WebAuthn reauthentication renews the jwt_sessions session's
 * auth_time and amr (["hwk"]); the next token (a refresh) carries them. */
export async function stepUpWithPasskey() {
  const options = expectOk(await allauth("GET", "/auth/webauthn/reauthenticate"),
                           "Passkey challenge");
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(
    options.data.request_options.publicKey);
  const credential = await navigator.credentials.get({publicKey});
  expectOk(await allauth("POST", "/auth/webauthn/reauthenticate",
                         {credential: credential.toJSON()}), "Passkey check");
  const refreshed = expectOk(await allauth("POST", "/tokens/refresh",
                                           {refresh_token: state.refresh}), "Refresh");
  state.access = refreshed.data.access_token;
  state.refresh = refreshed.data.refresh_token || state.refresh;
}

const vault = () => fetch("/api/vault/", {headers: {Authorization: `Bearer ${state.access}`}});

/** The vault wants a passkey: a 401 insufficient_user_authentication (RFC 9470) asks for
 * the step-up, then the call is made again with the new access token. */
export async function openVault() {
  let response = await vault();
  const challenge = response.headers.get("WWW-Authenticate") || "";
  if (response.status === 401 && challenge.includes("insufficient_user_authentication")) {
    await stepUpWithPasskey();
    response = await vault();
  }
  return {status: response.status, body: await response.json()};
}
