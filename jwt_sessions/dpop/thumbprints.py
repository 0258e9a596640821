"""RFC 7638 JWK thumbprints: the name of a key, the same whoever computes it."""
from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

# The members that define a key of each type, and nothing else (RFC 7638, section 3.2).
REQUIRED_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
                    "OKP": ("crv", "kty", "x")}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The base64url SHA-256 thumbprint of a public JWK; ValueError for a JWK of an
    unknown type or with a member missing or not a string."""
    members = REQUIRED_MEMBERS.get(jwk.get("kty"))  # type: ignore[arg-type]
    if members is None:
        raise ValueError("unsupported key type")
    if not all(isinstance(jwk.get(name), str) for name in members):
        raise ValueError("incomplete key")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"),
                           sort_keys=True, ensure_ascii=False)
    return b64url(hashlib.sha256(canonical.encode()).digest())
