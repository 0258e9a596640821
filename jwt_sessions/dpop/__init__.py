"""DPoP (RFC 9449): sessions bound to a key the client holds, so a copied token is useless.

A login or refresh that carries a valid `DPoP` proof binds its session to the proof's key
(its RFC 7638 thumbprint on the row); the session's access tokens then name the key
(`cnf.jkt`) and pass only as `Authorization: DPoP <token>` with a fresh proof by that key,
and its refresh needs one too. One module per job: `settings` (the `DPOP` setting),
`thumbprints`, `proofs` (verifying one proof), `nonces` (server nonces), `replay` (each
proof once), `errors`, and `doors` (what login, refresh and every door call).
"""
