// Types of jwt_sessions/dpop.js: DPoP proofs (RFC 9449) from a non-extractable key.

export interface DPoPOptions {
  /** The IndexedDB database that keeps the key pair; default "jwt_sessions.dpop". */
  databaseName?: string;
}

export declare class DPoPProofs {
  constructor(options?: DPoPOptions);
  /** The key's RFC 7638 thumbprint (the session's `cnf.jkt`). */
  thumbprint(): Promise<string>;
  /** A proof for `method` `url`, bound to `accessToken` when given. */
  proof(method: string, url: string, accessToken?: string | null): Promise<string>;
  /** fetch with `Authorization: DPoP` and a proof; retried once on `use_dpop_nonce`. */
  fetch(request: Request, accessToken?: string | null): Promise<Response>;
}

export declare function dpopProofs(options?: DPoPOptions): DPoPProofs;
