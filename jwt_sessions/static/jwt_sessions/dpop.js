// DPoP (RFC 9449) for the jwt_sessions browser client: a key the page can use but never
// read, and a proof signed with it for every request.
//
// The key pair is made by WebCrypto as non-extractable (P-256, ES256) and kept in
// IndexedDB, which stores the CryptoKey handle itself: it survives reloads, every tab
// of the origin uses the same handle, and no script (ours, an extension's, an XSS
// payload's) can ever export the private key. A copied token is worthless without it.
//
//   import {createClient} from "/static/jwt_sessions/client.js";
//   import {dpopProofs} from "/static/jwt_sessions/dpop.js";
//   const auth = createClient({baseUrl: "/auth/", dpop: dpopProofs()});

const ALG = {name: "ECDSA", namedCurve: "P-256"};
const SIGN = {name: "ECDSA", hash: "SHA-256"};
const STORE = "keys";
const KEY_NAME = "current";

function b64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const encode = (value) => b64url(new TextEncoder().encode(JSON.stringify(value)));

function request(idbRequest) {
  return new Promise((resolve, reject) => {
    idbRequest.onsuccess = () => resolve(idbRequest.result);
    idbRequest.onerror = () => reject(idbRequest.error);
  });
}

async function openDatabase(name) {
  const opening = indexedDB.open(name, 1);
  opening.onupgradeneeded = () => opening.result.createObjectStore(STORE);
  return request(opening);
}

/** The origin's key pair: loaded from IndexedDB, or made once (the first tab wins). */
async function loadKeyPair(databaseName) {
  const db = await openDatabase(databaseName);
  const read = () => request(db.transaction(STORE).objectStore(STORE).get(KEY_NAME));
  const found = await read();
  if (found) return found;
  const pair = await crypto.subtle.generateKey(ALG, false, ["sign", "verify"]);
  try {
    await request(db.transaction(STORE, "readwrite").objectStore(STORE).add(pair, KEY_NAME));
    return pair;
  } catch {
    return read();  // another tab stored its pair first: use that one
  }
}

/** Proofs of one origin-wide key; `fetch` sends a request with its token and a proof. */
export class DPoPProofs {
  #databaseName; #pair = null; #jwk = null; #nonce = null;

  constructor({databaseName = "jwt_sessions.dpop"} = {}) {
    this.#databaseName = databaseName;
  }

  async #keys() {
    this.#pair ??= loadKeyPair(this.#databaseName);
    const pair = await this.#pair;
    if (!this.#jwk) {
      const {kty, crv, x, y} = await crypto.subtle.exportKey("jwk", pair.publicKey);
      this.#jwk = {kty, crv, x, y};
    }
    return pair;
  }

  /** The key's RFC 7638 thumbprint (what the server stores as the session's `dpop_jkt`). */
  async thumbprint() {
    await this.#keys();
    const {crv, kty, x, y} = this.#jwk;
    const canonical = new TextEncoder().encode(JSON.stringify({crv, kty, x, y}));
    return b64url(await crypto.subtle.digest("SHA-256", canonical));
  }

  /** A proof for `method` `url` (its query and fragment left out), bound to
   * `accessToken` when given, with the server's latest nonce. */
  async proof(method, url, accessToken) {
    const pair = await this.#keys();
    const target = new URL(url, location.href);
    const claims = {jti: b64url(crypto.getRandomValues(new Uint8Array(16))), htm: method,
                    htu: target.origin + target.pathname, iat: Math.floor(Date.now() / 1000)};
    if (accessToken) {
      claims.ath = b64url(await crypto.subtle.digest("SHA-256",
                                                     new TextEncoder().encode(accessToken)));
    }
    if (this.#nonce) claims.nonce = this.#nonce;
    const input = `${encode({typ: "dpop+jwt", alg: "ES256", jwk: this.#jwk})}.${encode(claims)}`;
    const signature = await crypto.subtle.sign(SIGN, pair.privateKey,
                                               new TextEncoder().encode(input));
    return `${input}.${b64url(signature)}`;  // WebCrypto's ECDSA is JWS's r || s already
  }

  /** `fetch(request)` with `Authorization: DPoP <accessToken>` (when given) and a proof;
   * a `use_dpop_nonce` refusal is retried once with the nonce the server sent. */
  async fetch(request, accessToken) {
    const retry = request.clone();
    const response = await this.#send(request, accessToken);
    const challenge = response.headers.get("WWW-Authenticate") ?? "";
    if (response.status === 401 && challenge.includes('error="use_dpop_nonce"')) {
      return this.#send(retry, accessToken);
    }
    return response;
  }

  async #send(request, accessToken) {
    const headers = new Headers(request.headers);
    headers.set("DPoP", await this.proof(request.method, request.url, accessToken));
    if (accessToken) headers.set("Authorization", `DPoP ${accessToken}`);
    const response = await fetch(new Request(request, {headers}));
    this.#nonce = response.headers.get("DPoP-Nonce") ?? this.#nonce;
    return response;
  }
}

/** Proofs for `createClient({dpop: dpopProofs()})`; `databaseName` names the IndexedDB. */
export function dpopProofs(options) {
  return new DPoPProofs(options);
}
