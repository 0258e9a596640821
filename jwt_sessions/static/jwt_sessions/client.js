// The browser client of jwt_sessions: one ES module, no dependencies, no build step.
//
// Cookie mode (REFRESH_COOKIE): the refresh token is an HttpOnly cookie this code never
// sees; the access token lives in memory (and in sessionStorage, so a reload or a
// navigation within the tab keeps it). All tabs of an origin share one session, so they
// also share its access token: one tab refreshes at a time (Web Locks, or a claim over
// BroadcastChannel where locks are missing) and hands the new token to the others,
// because a refresh supersedes the previous access token of the session.
//
//   import {createClient} from "/static/jwt_sessions/client.js";
//   const auth = createClient({baseUrl: "/auth/"});
//   await auth.login({username, password});
//   const response = await auth.fetch("/api/me/");
//   auth.addEventListener("signed-out", (event) => show(event.detail.code));
//
// "Signed out" (a session ended: an event) is not "never signed in" (no refresh cookie at
// all, `refresh_token_missing`): a visitor without a session gets `status` "anonymous",
// no event and no further refresh, so a page that redirects on "signed-out" cannot loop.
//
// DPoP (sender-constrained tokens): pass `dpop: dpopProofs()` from ./dpop.js, and every
// login, refresh and call carries a proof signed by a key no script can read.

// A refresh refused with one of these ends the session here. `invalid_dpop_proof`: the
// session is bound to a key this browser no longer has (site data cleared, say).
const SIGNED_OUT_CODES = new Set(["session_revoked", "refresh_token_reused",
                                  "refresh_token_invalid", "invalid_dpop_proof"]);
const NO_SESSION_CODE = "refresh_token_missing";  // nothing to refresh: never signed in
const ASK_TIMEOUT_MS = 100;        // how long a new tab waits for another tab's token
const CLAIM_WINDOW_MS = 50;        // without Web Locks: how long a refresh claim may be contested
const OTHERS_TIMEOUT_MS = 5000;    // the longest we wait for another tab's refresh to finish
const REFRESH_TIMEOUT_MS = 10000;  // a refresh that hangs must not hold every tab's lock

/** An error answer of the jwt_sessions API: `status`, `code` and `detail` of its body. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = body.code || null;
    this.body = body;
  }
}

/** The error code of a 401/403 answer, or null. Reads a clone: the body stays readable. */
export async function errorCode(response) {
  if (response.ok) return null;
  try {
    const body = await response.clone().json();
    return typeof body.code === "string" ? body.code : null;
  } catch {
    return null;
  }
}

function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return "";
}

/** exp - iat of a JWT in ms (the server's clock on both sides, so no skew), or null. */
function lifetimeMs(access) {
  try {
    const payload = access.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const {exp, iat} = JSON.parse(atob(payload));
    return exp > iat ? (exp - iat) * 1000 : null;
  } catch {
    return null;
  }
}

/** The JSON body of an answer of the API; an error answer rejects with ApiError. */
async function answer(response) {
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = {detail: text.slice(0, 200)};  // an HTML error page of a proxy, say
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const randomId = () => Math.random().toString(36).slice(2) + Date.now().toString(36);

/** The 401 a call answers once the session has ended (as the server words it). */
function signedOutResponse(code) {
  const body = {detail: "The session has ended; sign in again.", code};
  return new Response(JSON.stringify(body), {
    status: 401, headers: {"Content-Type": "application/json", "WWW-Authenticate": "Bearer"}});
}

export class JwtSessionsClient extends EventTarget {
  #base; #options; #storage; #channel; #lockName;
  #token = null;           // {access, expiresAt, issuedAt} (local clock, ms)
  #signedOut = false;      // no refresh is attempted until a login or another tab's token
  #signedOutCode = null;   // why (the code that ended the session)
  #anonymous = false;      // the server saw no refresh token: never signed in (no event)
  #renewal = null;         // this tab's refresh in progress
  #others = new Map();     // refreshes other tabs announced: id -> claimed at
  #othersChanged = [];     // resolvers waiting for `#others` to change
  #asked;                  // resolves once a new tab has heard from the others (or timed out)

  constructor(options = {}) {
    super();
    this.#options = {
      baseUrl: "/auth/", credentials: "same-origin", csrfCookieName: "csrftoken",
      csrfHeaderName: "X-CSRFToken", storage: globalThis.sessionStorage ?? null,
      ...options,
    };
    this.#base = new URL(this.#options.baseUrl, location.href).href;
    this.#storage = this.#options.storage;
    this.#lockName = `jwt_sessions:${this.#base}`;
    this.#token = this.#load();
    if (typeof BroadcastChannel === "function") {
      this.#channel = new BroadcastChannel(this.#lockName);
      this.#channel.onmessage = (event) => this.#receive(event.data);
    }
    this.#asked = this.#token || !this.#channel ? Promise.resolve() : this.#ask();
  }

  // ---------------------------------------------------------------- public API

  /** POST login/ with `{<USERNAME_FIELD>, password}`; resolves to the login body. */
  async login(credentials) {
    const body = await this.#call("POST", "login/", credentials);
    this.#adoptAnswer(body);
    return body;
  }

  /** POST logout/: this session ends in every tab. */
  async logout() {
    try {
      // With no live access token, the refresh cookie names the session (CSRF-checked).
      const access = await this.accessToken().catch(() => null);
      await this.#call("POST", "logout/", undefined, access);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;  // an error answer: already ended
    } finally {
      this.signedOut("logout");
    }
  }

  /** POST logout-all/: every session of the user ends (this one too unless keepCurrent). */
  async logoutAll({keepCurrent = false} = {}) {
    await this.#authorized("POST", "logout-all/", {keep_current: keepCurrent});
    if (!keepCurrent) this.signedOut("logout");
  }

  /** GET sessions/: the user's active sessions (`current` marks this one). */
  async sessions() {
    return this.#authorized("GET", "sessions/");
  }

  /** DELETE sessions/<id>/: end one of the user's sessions (this one: signed out). */
  async revokeSession(id, {current = false} = {}) {
    await this.#authorized("DELETE", `sessions/${encodeURIComponent(id)}/`);
    if (current) this.signedOut("logout");
  }

  /**
   * `fetch` with `Authorization: Bearer <access>`; answers a Response as fetch does.
   * An expired access token is renewed once and the request retried; so is a superseded
   * one (`token_invalid` after another tab's refresh). A revoked session signs out.
   */
  async fetch(input, init) {
    const request = new Request(input, init);
    const access = await this.accessToken();
    let response = await this.#send(request.clone(), access);
    const code = response.status === 401 ? await errorCode(response) : null;
    if (code === "token_expired" || code === "token_invalid") {
      const fresh = await this.#renew(access);
      if (fresh) response = await this.#send(request, fresh);
      // The refresh said the session is over: answer with that, not the stale token's 401.
      else if (this.#signedOut) response = signedOutResponse(this.#signedOutCode);
    }
    if (response.status === 401 && await errorCode(response) === "session_revoked") {
      this.signedOut("session_revoked");
    }
    return response;
  }

  /** A live access token (renewed shortly before it expires), or null when signed out. */
  async accessToken() {
    await this.#asked;
    if (this.#token && !this.#expiringSoon(this.#token)) return this.#token.access;
    if (this.#signedOut) return null;
    return this.#renew(this.#token?.access ?? null);
  }

  /**
   * POST reauthenticate/ with the user's password (a step-up, for a view that answered
   * `reauthentication_required`): the new pair of the same session is adopted here and
   * handed to every tab, so the retried call goes out with it. Runs while no tab
   * refreshes (a reauthentication rotates the refresh cookie). Resolves to the answer's
   * body; a wrong password rejects with ApiError `invalid_credentials`, session untouched.
   */
  async reauthenticate(password) {
    await this.accessToken();
    return this.#exclusive(async () => {
      const body = await this.#call("POST", "reauthenticate/", {password},
                                    this.#token?.access);
      this.#adoptAnswer(body);
      return body;
    });
  }

  /** True once signed out (until a login here or in another tab). */
  get isSignedOut() {
    return this.#signedOut && !this.#anonymous;
  }

  /**
   * "signed-in" (a token is held), "signed-out" (the session ended), "anonymous" (the
   * server saw no refresh token: never signed in, or the cookie is gone), or "unknown"
   * (nothing asked yet).
   */
  get status() {
    if (this.#token) return "signed-in";
    if (this.#anonymous) return "anonymous";
    return this.#signedOut ? "signed-out" : "unknown";
  }

  /**
   * The session has ended: forget the token here and in every tab, and dispatch
   * "signed-out" with `detail.code`. Also for other channels that learn it first
   * (a WebSocket closed with 4401, say): call `client.signedOut("session_revoked")`.
   */
  signedOut(code, {broadcast = true} = {}) {
    const already = this.#signedOut && !this.#token;
    this.#signedOut = true;
    this.#signedOutCode = code;
    this.#token = null;
    this.#save();
    this.#anonymous = false;
    if (broadcast) this.#post({type: "signed-out", code});
    if (!already) this.dispatchEvent(new CustomEvent("signed-out", {detail: {code}}));
  }

  /** Shorthand for addEventListener("signed-out"); returns a function that unsubscribes. */
  onSignedOut(callback) {
    const listener = (event) => callback(event.detail.code);
    this.addEventListener("signed-out", listener);
    return () => this.removeEventListener("signed-out", listener);
  }

  // ---------------------------------------------------------------- HTTP

  #url(path) {
    return new URL(path, this.#base).href;
  }

  #csrfToken() {
    const option = this.#options.csrfToken;
    return typeof option === "function" ? option() : readCookie(this.#options.csrfCookieName);
  }

  /** One call of the auth endpoints; resolves to the JSON body, rejects with ApiError. */
  async #call(method, path, body, access, signal) {
    const headers = {"Content-Type": "application/json",
                     [this.#options.csrfHeaderName]: this.#csrfToken()};
    const response = await this.#send(new Request(this.#url(path), {
      method, headers, credentials: this.#options.credentials, signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    }), access);
    return answer(response);
  }

  /** An auth endpoint that needs the access token, through `fetch` (so with its retries). */
  async #authorized(method, path, body) {
    const response = await this.fetch(this.#url(path), {
      method, credentials: this.#options.credentials,
      headers: {"Content-Type": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return answer(response);
  }

  #send(request, access) {
    if (this.#options.dpop) return this.#options.dpop.fetch(request, access);
    const headers = new Headers(request.headers);
    if (access) headers.set("Authorization", `Bearer ${access}`);
    return fetch(new Request(request, {headers}));
  }

  // ---------------------------------------------------------------- refresh

  #expiringSoon(token) {
    const margin = Math.min(30000, (token.lifetime ?? 0) / 10);
    return Date.now() >= token.expiresAt - margin;
  }

  /**
   * A token newer than `stale`: another tab's if it refreshed meanwhile, else our own
   * refresh, one at a time across the tabs. Null when the session has ended.
   */
  #renew(stale) {
    this.#renewal ??= this.#exclusive(async () => {
      if (this.#token && this.#token.access !== stale && !this.#expiringSoon(this.#token)) {
        return this.#token.access;
      }
      return this.#refresh();
    }).finally(() => { this.#renewal = null; });
    return this.#renewal;
  }

  async #refresh() {
    const signal = AbortSignal.timeout?.(REFRESH_TIMEOUT_MS);
    try {
      return this.#adoptAnswer(await this.#call("POST", "refresh/", {}, undefined, signal));
    } catch (error) {
      if (error instanceof ApiError && SIGNED_OUT_CODES.has(error.code)) {
        this.signedOut(error.code);
        return null;
      }
      if (error instanceof ApiError && error.code === NO_SESSION_CODE) {
        this.#noSession();
        return null;
      }
      throw error;  // a network error or a 5xx/429: not a verdict on the session
    }
  }

  /** No session to refresh: stop asking until a login, with no "signed-out" event. */
  #noSession() {
    this.#anonymous = true;
    this.#signedOut = true;  // no further refresh
    this.#signedOutCode = NO_SESSION_CODE;
    this.#token = null;
    this.#save();
  }

  /** Run `task` while no other tab of this origin refreshes. */
  async #exclusive(task) {
    const run = async (id) => {
      await this.#othersDone();
      this.#post({type: "refresh-start", id, at: Date.now()});
      try {
        return await task();
      } finally {
        this.#post({type: "refresh-end", id});
      }
    };
    if (globalThis.navigator?.locks?.request) {
      return navigator.locks.request(this.#lockName, () => run(randomId()));
    }
    if (!this.#channel) return task();
    return run(await this.#claim());
  }

  /** Without Web Locks: announce a claim; the earliest claim in the window wins. */
  async #claim() {
    for (;;) {
      await this.#othersDone();
      const id = randomId(), at = Date.now();
      this.#post({type: "refresh-claim", id, at});
      await sleep(CLAIM_WINDOW_MS);
      const beaten = [...this.#others].some(([otherId, otherAt]) =>
        otherAt < at || (otherAt === at && otherId < id));
      if (!beaten) return id;
      this.#post({type: "refresh-end", id});
    }
  }

  /** Wait until the refreshes other tabs announced are over (a closed tab: time out). */
  async #othersDone() {
    const deadline = Date.now() + OTHERS_TIMEOUT_MS;
    while (this.#others.size && Date.now() < deadline) {
      await Promise.race([new Promise((resolve) => this.#othersChanged.push(resolve)),
                          sleep(deadline - Date.now())]);
    }
    this.#others.clear();
  }

  // ---------------------------------------------------------------- tabs

  /** The token of a login or refresh answer becomes everyone's; resolves to it. */
  #adoptAnswer(body) {
    const issuedAt = Date.now(), lifetime = lifetimeMs(body.access);
    const expiresAt = lifetime ? issuedAt + lifetime : Date.parse(body.access_expires_at);
    this.#adopt({access: body.access, issuedAt, lifetime, expiresAt});
    this.#post({type: "token", ...this.#token});
    return body.access;
  }

  /** Take `token` as the current one unless ours is newer. */
  #adopt(token) {
    if (this.#token && this.#token.issuedAt > token.issuedAt) return;
    this.#token = {access: token.access, issuedAt: token.issuedAt,
                   lifetime: token.lifetime, expiresAt: token.expiresAt};
    this.#signedOut = false;
    this.#anonymous = false;
    this.#save();
  }

  #receive(message) {
    switch (message?.type) {
      case "token":
        this.#adopt(message);
        break;
      case "ask":
        if (this.#token) this.#post({type: "token", ...this.#token});
        break;
      case "signed-out":
        this.signedOut(message.code, {broadcast: false});
        break;
      case "refresh-claim":
      case "refresh-start":
        this.#others.set(message.id, message.at);
        break;
      case "refresh-end":
        this.#others.delete(message.id);
        this.#othersChanged.splice(0).forEach((resolve) => resolve());
        break;
    }
  }

  /** A new tab asks the others for their token before spending a refresh on one. */
  async #ask() {
    this.#post({type: "ask"});
    const deadline = Date.now() + ASK_TIMEOUT_MS;
    while (!this.#token && Date.now() < deadline) await sleep(10);
  }

  #post(message) {
    this.#channel?.postMessage(message);
  }

  #load() {
    try {
      const token = JSON.parse(this.#storage?.getItem(this.#lockName) ?? "null");
      return token && typeof token.access === "string" ? token : null;
    } catch {
      return null;
    }
  }

  #save() {
    try {
      if (this.#token) this.#storage?.setItem(this.#lockName, JSON.stringify(this.#token));
      else this.#storage?.removeItem(this.#lockName);
    } catch {
      // storage full or disabled: memory alone still works
    }
  }
}

/** A client for the jwt_sessions API included at `options.baseUrl` (default "/auth/"). */
export function createClient(options) {
  return new JwtSessionsClient(options);
}
