"""`JWT_SESSIONS["SHARED_SIGNALS"]`: its defaults, read at call time (so `override_settings`
works), and whether the feature is on at all."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..conf import as_timedelta, jwt_settings

DEFAULTS: dict[str, Any] = {
    "ISSUER": None,  # required: the transmitter's `issuer` and every SET's `iss`
    # The SET signing key when ALGORITHM is HS* (SETs are always signed asymmetrically);
    # otherwise the access tokens' own SIGNING_KEY / VERIFYING_KEY / KEY_ID.
    "ALGORITHM": None,
    "SIGNING_KEY": None,
    "VERIFYING_KEY": None,
    "KEY_ID": None,
    "TRANSMITTERS": [],  # receiver side: [{"issuer", "jwks" (dict or URL), "audience"}]
    "PUSH_TIMEOUT": timedelta(seconds=5),
    "RETRY_INTERVAL": timedelta(seconds=1),  # first retry; doubles per failed attempt
    "RETRY_MAX_INTERVAL": timedelta(minutes=5),
    "MAX_ATTEMPTS": 50,  # then the event is marked failed (and logged)
    "RETENTION": timedelta(days=7),  # delivered events and received jtis kept this long
    "JWKS_CACHE_TTL": timedelta(hours=1),
    "POLL_WAIT": timedelta(seconds=10),  # longest wait of a poll without returnImmediately
}
DURATION_KEYS = ("PUSH_TIMEOUT", "RETRY_INTERVAL", "RETRY_MAX_INTERVAL", "RETENTION",
                 "JWKS_CACHE_TTL", "POLL_WAIT")


def raw() -> dict[str, Any] | None:
    value = jwt_settings.SHARED_SIGNALS
    return value if isinstance(value, dict) else None


def enabled() -> bool:
    return raw() is not None


def setting(name: str) -> Any:
    """One key of SHARED_SIGNALS, its default when unset."""
    value = (raw() or {}).get(name, DEFAULTS[name])
    return as_timedelta(value) if name in DURATION_KEYS else value


def issuer() -> str:
    return str(setting("ISSUER") or "")
