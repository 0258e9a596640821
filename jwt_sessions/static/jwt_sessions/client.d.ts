// Types of jwt_sessions/client.js, the browser client of jwt_sessions (cookie mode).

import type {DPoPProofs} from "./dpop.js";

/** Codes after which the session is over: the client dispatches "signed-out"
 *  (`invalid_dpop_proof`: a DPoP-bound session whose key this browser no longer has). */
export type SignedOutCode =
  | "session_revoked" | "refresh_token_reused" | "refresh_token_invalid"
  | "invalid_dpop_proof" | "logout" | string;

export interface ClientOptions {
  /** Where `jwt_sessions.urls` is included; default "/auth/". May be another origin. */
  baseUrl?: string;
  /** fetch credentials for the auth endpoints: "same-origin" (default), or "include"
   *  for an API on another origin (with django-cors-headers allowing credentials). */
  credentials?: RequestCredentials;
  /** The CSRF token sent on refresh and logout; default: read the `csrfCookieName` cookie. */
  csrfToken?: () => string;
  /** Django's CSRF_COOKIE_NAME; default "csrftoken". */
  csrfCookieName?: string;
  /** Django's CSRF_HEADER_NAME as a header; default "X-CSRFToken". */
  csrfHeaderName?: string;
  /** Where the access token survives a reload of the tab; default sessionStorage, null: memory. */
  storage?: Storage | null;
  /** DPoP proofs (`dpopProofs()` of ./dpop.js): every login, refresh and call carries one,
   *  and the session is bound to the browser's non-extractable key. */
  dpop?: DPoPProofs | null;
}

/** The body of a login or refresh answer in cookie mode (no `refresh`: it is a cookie). */
export interface TokenAnswer {
  access: string;
  access_expires_at: string;
  refresh_expires_at: string;
  session_id: string;
  /** "DPoP" when the session is bound to a DPoP key, else "Bearer". */
  token_type: "Bearer" | "DPoP";
}

/** One of the user's active sessions, as `GET sessions/` lists it. */
export interface SessionInfo {
  id: string;
  created_at: string;
  last_activity_at: string;
  expires_at: string;
  ip_address: string | null;
  location: string | null;
  user_agent: string;
  browser: string;
  os: string;
  device: string;
  device_type: "mobile" | "tablet" | "pc" | "bot" | "other";
  /** When and how the session last proved who its user is (RFC 8176 names: "pwd", "hwk"...). */
  auth_time: string;
  amr: string[];
  /** Whether the session's tokens work only with DPoP proofs by the device's key. */
  dpop_bound: boolean;
  current: boolean;
}

/** An error answer of the API: `status`, and `code` / `detail` of its body. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | null;
  readonly body: Record<string, unknown>;
}

/** The `code` of an error answer (read from a clone), or null. */
export function errorCode(response: Response): Promise<string | null>;

export interface SignedOutEvent extends CustomEvent<{ code: SignedOutCode }> {}

export class JwtSessionsClient extends EventTarget {
  constructor(options?: ClientOptions);
  /** POST login/ with `{<USERNAME_FIELD>: ..., password: ...}`; rejects with ApiError. */
  login(credentials: Record<string, string>): Promise<TokenAnswer>;
  /** POST logout/; this session ends in every tab. */
  logout(): Promise<void>;
  /** POST logout-all/; every session of the user ends (this one too unless keepCurrent). */
  logoutAll(options?: { keepCurrent?: boolean }): Promise<void>;
  /** GET sessions/. */
  sessions(): Promise<SessionInfo[]>;
  /** DELETE sessions/<id>/; pass `current: true` for this tab's own session. */
  revokeSession(id: string, options?: { current?: boolean }): Promise<void>;
  /** window.fetch with the access token; renews and retries once on token_expired or a
   *  superseded token (token_invalid); a revoked session dispatches "signed-out", and a
   *  call whose renewal found the session ended answers 401 with that code. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** A live access token, renewed shortly before it expires; null when signed out. */
  accessToken(): Promise<string | null>;
  /** True once a session ended here (not for a visitor who never signed in). */
  readonly isSignedOut: boolean;
  /** "anonymous": the server saw no refresh token (never signed in); no event for that. */
  readonly status: "signed-in" | "signed-out" | "anonymous" | "unknown";
  /** POST reauthenticate/ (a step-up): adopts the new pair in every tab; rejects with
   *  ApiError `invalid_credentials` on a wrong password. */
  reauthenticate(password: string): Promise<TokenAnswer>;
  /** Tell this client (and every tab) that the session has ended, e.g. when a WebSocket
   *  of the session closes with 4401. Dispatches "signed-out". */
  signedOut(code: SignedOutCode, options?: { broadcast?: boolean }): void;
  /** Subscribe to "signed-out"; returns the function that unsubscribes. */
  onSignedOut(callback: (code: SignedOutCode) => void): () => void;
  addEventListener(type: "signed-out", listener: (event: SignedOutEvent) => void,
                   options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
                   options?: boolean | AddEventListenerOptions): void;
}

export function createClient(options?: ClientOptions): JwtSessionsClient;
