"""The key SETs are signed with: the access tokens' own asymmetric key, or (for an HS*
deployment, whose key is a secret nobody else may hold) the SET key of SHARED_SIGNALS.
Either way it is a key the JWKS endpoint publishes, so receivers verify SETs from there."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jwt.algorithms import get_default_algorithms

from ..conf import cached_per_settings, jwt_settings
from . import settings as ssf


@dataclass(frozen=True)
class SigningKey:
    algorithm: str
    private: Any
    public: Any
    kid: str | None


def uses_own_key() -> bool:
    """True when SETs need the SET key of SHARED_SIGNALS (access tokens are HMAC)."""
    return str(jwt_settings.ALGORITHM).startswith("HS")


@cached_per_settings
def signing_key() -> SigningKey:
    if uses_own_key():
        name = ssf.setting("ALGORITHM") or "ES256"
        private, public, kid = (ssf.setting("SIGNING_KEY"), ssf.setting("VERIFYING_KEY"),
                                ssf.setting("KEY_ID"))
    else:
        name = jwt_settings.ALGORITHM
        private, public, kid = (jwt_settings.SIGNING_KEY, jwt_settings.VERIFYING_KEY,
                                jwt_settings.KEY_ID)
    algorithm = get_default_algorithms()[name]
    return SigningKey(name, algorithm.prepare_key(private), algorithm.prepare_key(public), kid)


def published_jwk() -> dict[str, Any] | None:
    """The SET key's public JWK when the access-token JWKS does not already hold it."""
    if not (ssf.enabled() and uses_own_key()):
        return None
    key = signing_key()
    jwk = json.loads(get_default_algorithms()[key.algorithm].to_jwk(key.public))
    public = {name: jwk[name] for name in ("kty", "crv", "n", "e", "x", "y") if name in jwk}
    public.update({"alg": key.algorithm, "use": "sig"})
    if key.kid:
        public["kid"] = key.kid
    return public
