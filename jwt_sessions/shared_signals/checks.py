"""System checks of `JWT_SESSIONS["SHARED_SIGNALS"]`: a bad setting fails at start-up.

Ids jwt_sessions.E301 onwards, one per problem (docs/checks.md lists them)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import checks

from ..conf import as_timedelta
from .settings import DEFAULTS, DURATION_KEYS

_TRANSMITTER_KEYS = {"issuer", "jwks", "audience"}


def _error(msg: str, hint: str, number: int) -> checks.Error:
    return checks.Error(msg, hint=hint, id=f"jwt_sessions.E{number:03d}")


@checks.register(checks.Tags.security)
def check_shared_signals(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    raw = getattr(settings, "JWT_SESSIONS", {})
    value = raw.get("SHARED_SIGNALS") if isinstance(raw, dict) else None
    if value is None:
        return []
    if not isinstance(value, dict):
        return [_error("JWT_SESSIONS['SHARED_SIGNALS'] must be a dict or None.",
                       "See docs/shared-signals.md.", 301)]
    return [*_keys(value), *_issuer(value), *_durations(value),
            *_set_key(raw, value), *_transmitters(value)]


def _keys(value: dict) -> Iterator[checks.Error]:
    for key in sorted(set(value) - set(DEFAULTS)):
        yield _error(f"Unknown SHARED_SIGNALS key {key!r}.",
                     f"Known keys: {', '.join(sorted(DEFAULTS))}.", 302)


def _issuer(value: dict) -> Iterator[checks.Error]:
    if not (isinstance(value.get("ISSUER"), str) and value["ISSUER"]):
        yield _error("SHARED_SIGNALS['ISSUER'] is required: the transmitter's issuer.",
                     "An https URL naming this deployment, e.g. 'https://auth.example.com/'.",
                     303)


def _durations(value: dict) -> Iterator[checks.Error]:
    for key in DURATION_KEYS:
        if key in value and not (isinstance(as_timedelta(value[key]), timedelta)
                                 and as_timedelta(value[key]) > timedelta(0)):
            yield _error(f"SHARED_SIGNALS[{key!r}] must be a positive timedelta or seconds.",
                         "e.g. timedelta(seconds=5).", 304)


def _set_key(raw: dict, value: dict) -> Iterator[checks.Error]:
    """SETs are verified by strangers from the JWKS: an HMAC secret cannot sign them."""
    if not str(raw.get("ALGORITHM", "HS256")).startswith("HS"):
        return
    algorithm = value.get("ALGORITHM") or "ES256"
    if str(algorithm).startswith("HS") or not (value.get("SIGNING_KEY")
                                               and value.get("VERIFYING_KEY")):
        yield _error(
            "With an HMAC ALGORITHM, SHARED_SIGNALS needs an asymmetric SET key.",
            "Set SHARED_SIGNALS['SIGNING_KEY'] and ['VERIFYING_KEY'] (PEM) and optionally "
            "['ALGORITHM'] (ES256 by default) and ['KEY_ID']; the JWKS endpoint publishes "
            "the public key.", 305)
        return
    from jwt.algorithms import get_default_algorithms

    try:
        implementation = get_default_algorithms()[algorithm]
        implementation.prepare_key(value["SIGNING_KEY"])
        implementation.prepare_key(value["VERIFYING_KEY"])
    except Exception:  # noqa: BLE001 (any failure is the same bad key)
        yield _error(f"The SHARED_SIGNALS SET key cannot be used with {algorithm}.",
                     "PEM keys of the algorithm's type (ES256: a P-256 EC key).", 306)


def _transmitters(value: dict) -> Iterator[checks.Error]:
    transmitters = value.get("TRANSMITTERS", [])
    if not isinstance(transmitters, list):
        yield _error("SHARED_SIGNALS['TRANSMITTERS'] must be a list.",
                     "[{'issuer': ..., 'jwks': ..., 'audience': ...}]", 307)
        return
    for index, entry in enumerate(transmitters):
        hint = "{'issuer': str, 'jwks': a JWKS dict or its https URL, 'audience': str}"
        if not isinstance(entry, dict) or set(entry) != _TRANSMITTER_KEYS:
            yield _error(f"TRANSMITTERS[{index}] must have exactly the keys issuer, jwks, "
                         "audience.", hint, 308)
            continue
        jwks = entry["jwks"]
        jwks_ok = (isinstance(jwks, dict) and isinstance(jwks.get("keys"), list)) or (
            isinstance(jwks, str) and jwks.startswith(("https://", "http://")))
        if not (isinstance(entry["issuer"], str) and entry["issuer"]
                and isinstance(entry["audience"], str) and entry["audience"] and jwks_ok):
            yield _error(f"TRANSMITTERS[{index}] is malformed.", hint, 309)
