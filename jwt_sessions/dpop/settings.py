"""The `JWT_SESSIONS["DPOP"]` setting: a dict whose every key is optional.

    JWT_SESSIONS = {"DPOP": {"REQUIRED": True, "NONCE": True}}

- `REQUIRED` (False): every session must be bound; without it, proofs are honoured when
  a client sends one and bearer sessions work as before.
- `NONCE` (False): proofs must carry a server nonce (`DPoP-Nonce`), which bounds how far
  ahead a stolen device could pre-compute proofs.
- `ALGORITHMS`: the proof signature algorithms accepted (asymmetric only).
- `PROOF_MAX_AGE` (60 s): how far a proof's `iat` may be from now, either way.
- `NONCE_LIFETIME` (5 min): how long a server nonce is accepted.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..conf import as_timedelta, cached_per_settings, jwt_settings

DEFAULT_ALGORITHMS = ("ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256")
# Algorithms a proof may use at all: PyJWT verifies them with `cryptography`, and each
# names one kind of public key. HMAC and "none" can prove no possession.
SUPPORTED_ALGORITHMS = frozenset({
    "ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384",
    "PS512"})
DEFAULTS: dict[str, Any] = {
    "REQUIRED": False,
    "NONCE": False,
    "ALGORITHMS": list(DEFAULT_ALGORITHMS),
    "PROOF_MAX_AGE": timedelta(seconds=60),
    "NONCE_LIFETIME": timedelta(minutes=5),
}
DURATIONS = ("PROOF_MAX_AGE", "NONCE_LIFETIME")


@dataclass(frozen=True)
class DPoPSettings:
    required: bool
    nonce: bool
    algorithms: tuple[str, ...]
    proof_max_age: timedelta
    nonce_lifetime: timedelta


def raw_settings() -> dict[str, Any]:
    """The user's `DPOP` dict as given ({} when unset); the checks read this."""
    value = jwt_settings.DPOP
    return value if isinstance(value, dict) else {}


@cached_per_settings
def dpop_settings() -> DPoPSettings:
    """The DPOP setting merged over its defaults (checked at start-up by the system
    checks), read once per settings."""
    merged = {**DEFAULTS, **raw_settings()}
    return DPoPSettings(
        required=bool(merged["REQUIRED"]), nonce=bool(merged["NONCE"]),
        algorithms=tuple(merged["ALGORITHMS"]),
        proof_max_age=as_timedelta(merged["PROOF_MAX_AGE"]),
        nonce_lifetime=as_timedelta(merged["NONCE_LIFETIME"]))
