"""System checks: bad `JWT_SESSIONS` settings fail at start-up, with how to fix them."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from .conf import DEFAULTS, DURATION_KEYS, FAILURE_POLICIES, as_timedelta

_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_COOKIE_KEYS = {"name", "path", "domain", "secure", "samesite"}


def _error(msg: str, hint: str, number: int) -> checks.Error:
    return checks.Error(msg, hint=hint, id=f"jwt_sessions.E{number:03d}")


@checks.register(checks.Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    raw = getattr(settings, "JWT_SESSIONS", {})
    if not isinstance(raw, dict):
        return [_error("JWT_SESSIONS must be a dict.", "Set JWT_SESSIONS = {...}.", 1)]
    return [*_unknown_keys(raw), *_durations(raw), *_algorithm_and_keys(raw),
            *_policies(raw), *_cookie(raw), *_claims_hook(raw)]


def _unknown_keys(raw: dict) -> Iterator[checks.Error]:
    for key in sorted(set(raw) - set(DEFAULTS)):
        yield _error(f"Unknown JWT_SESSIONS setting {key!r}.",
                     f"Remove it, or use one of: {', '.join(sorted(DEFAULTS))}.", 1)


def _value(raw: dict, key: str) -> Any:
    return raw.get(key, DEFAULTS[key])


def _durations(raw: dict) -> Iterator[checks.Error]:
    for key in DURATION_KEYS:
        value = as_timedelta(_value(raw, key))
        if value is None and key == "SESSION_MAX_LIFETIME":
            continue
        if not isinstance(value, timedelta) or value < timedelta(0):
            yield _error(f"JWT_SESSIONS[{key!r}] must be a timedelta (or seconds), >= 0.",
                         "For example timedelta(minutes=15).", 2)
    access = as_timedelta(_value(raw, "ACCESS_TOKEN_LIFETIME"))
    grace = as_timedelta(_value(raw, "REFRESH_REUSE_GRACE"))
    for key, example in (("ACCESS_TOKEN_LIFETIME", "15 minutes"),
                         ("REFRESH_TOKEN_LIFETIME", "30 days")):
        value = as_timedelta(_value(raw, key))
        if isinstance(value, timedelta) and value <= timedelta(0):
            yield _error(f"{key} must be positive.", f"Use e.g. {example}.", 2)
    if isinstance(access, timedelta) and isinstance(grace, timedelta) and grace > access:
        yield _error("REFRESH_REUSE_GRACE is longer than ACCESS_TOKEN_LIFETIME.",
                     "Set REFRESH_REUSE_GRACE to a few seconds (default 10 s), at most "
                     "ACCESS_TOKEN_LIFETIME: it is a retry window, not a lifetime.", 3)


def _algorithm_and_keys(raw: dict) -> Iterator[checks.Error]:
    from jwt.algorithms import get_default_algorithms, requires_cryptography

    algorithm = _value(raw, "ALGORITHM")
    available = get_default_algorithms()
    if not isinstance(algorithm, str):
        algorithm = repr(algorithm)  # a list or number: report it, never crash on it
    if algorithm not in available or algorithm == "none":
        hint = ("Install cryptography (pip install 'PyJWT[crypto]')."
                if algorithm in requires_cryptography else
                "Use HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA.")
        yield _error(f"ALGORITHM {algorithm!r} cannot be used by PyJWT.", hint, 4)
        return
    signing = raw.get("SIGNING_KEY") or settings.SECRET_KEY
    if algorithm.startswith("HS"):
        yield from _hmac_keys(algorithm, {"SIGNING_KEY": signing, **_additional(raw)})
        return
    if not raw.get("SIGNING_KEY") or not raw.get("VERIFYING_KEY"):
        yield _error(f"ALGORITHM {algorithm} needs SIGNING_KEY and VERIFYING_KEY (PEM).",
                     "Set the private key as SIGNING_KEY and the public key as VERIFYING_KEY.",
                     6)
        return
    keys = {"SIGNING_KEY": raw["SIGNING_KEY"], "VERIFYING_KEY": raw["VERIFYING_KEY"],
            **_additional(raw)}
    for name, key in keys.items():
        try:
            available[algorithm].prepare_key(key)
        except Exception:  # noqa: BLE001 - any parse failure is the same misconfiguration
            yield _error(f"{name} is not a usable {algorithm} key.",
                         "Give a PEM-encoded key of the algorithm's type.", 6)


def _additional(raw: dict) -> dict[str, Any]:
    extra = raw.get("ADDITIONAL_VERIFYING_KEYS") or {}
    if not isinstance(extra, dict):
        return {}  # reported by _policies
    return {f"ADDITIONAL_VERIFYING_KEYS[{kid!r}]": key for kid, key in extra.items()}


def _hmac_keys(algorithm: str, keys: dict[str, Any]) -> Iterator[checks.Error]:
    """Every HMAC key at least as long as the hash, and not a PEM PyJWT would refuse."""
    from jwt.algorithms import get_default_algorithms

    minimum = _HMAC_MIN_BYTES[algorithm]
    for name, key in keys.items():
        raw_key = key.encode() if isinstance(key, str) else key
        if not isinstance(raw_key, bytes) or len(raw_key) < minimum:
            yield _error(f"{name} for {algorithm} is shorter than {minimum} bytes.",
                         "Use a random key at least as long as the hash (RFC 7518 §3.2).", 5)
            continue
        try:
            get_default_algorithms()[algorithm].prepare_key(raw_key)
        except Exception:  # noqa: BLE001 - any refusal is the same misconfiguration
            yield _error(f"{name} is not a usable {algorithm} secret (a PEM key?).",
                         "HMAC needs a random secret; PEM keys go with RS*/ES*/EdDSA.", 5)


def _policies(raw: dict) -> Iterator[checks.Error]:
    if _value(raw, "REDIS_FAILURE_POLICY") not in FAILURE_POLICIES:
        yield _error("REDIS_FAILURE_POLICY must be 'database' or 'deny'.",
                     "'database' keeps serving from the database; 'deny' answers 503.", 7)
    limit = _value(raw, "MAX_SESSIONS_PER_USER")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                              or limit < 1):
        yield _error("MAX_SESSIONS_PER_USER must be None or a positive integer.", "", 8)
    rounds = _value(raw, "BCRYPT_ROUNDS")
    if not isinstance(rounds, int) or not 4 <= rounds <= 31:
        yield _error("BCRYPT_ROUNDS must be an integer from 4 to 31.", "The default is 12.",
                     9)
    alias = _value(raw, "CACHE_ALIAS")
    if alias not in getattr(settings, "CACHES", {}):
        yield _error(f"CACHE_ALIAS {alias!r} is not in CACHES.",
                     "Configure a django-redis cache under that alias.", 10)
    extra = _value(raw, "ADDITIONAL_VERIFYING_KEYS")
    if not isinstance(extra, dict):
        yield _error("ADDITIONAL_VERIFYING_KEYS must be a dict {kid: key}.", "", 11)


def _cookie(raw: dict) -> Iterator[checks.Error]:
    cookie = _value(raw, "REFRESH_COOKIE")
    if cookie is None:
        return
    if not isinstance(cookie, dict):
        yield _error("REFRESH_COOKIE must be None or a dict.", "Use {} for the defaults.", 12)
        return
    for key in sorted(set(cookie) - _COOKIE_KEYS):
        yield _error(f"Unknown REFRESH_COOKIE option {key!r}.",
                     f"Use: {', '.join(sorted(_COOKIE_KEYS))}.", 12)
    samesite = cookie.get("samesite", "Lax")
    if samesite not in ("Lax", "Strict", "None"):
        yield _error("REFRESH_COOKIE samesite must be 'Lax', 'Strict' or 'None'.", "", 12)
    secure = cookie.get("secure", not settings.DEBUG)
    if str(cookie.get("name", "")).startswith("__Host-") and (
            cookie.get("path") != "/" or cookie.get("domain") or not secure):
        yield _error("A __Host- refresh cookie needs path '/', no domain and secure on.",
                     "Set path='/', remove domain, keep secure=True, or rename the cookie.",
                     13)
    if samesite == "None" and not secure:
        yield _error("REFRESH_COOKIE samesite 'None' requires secure.", "", 12)


def _claims_hook(raw: dict) -> Iterator[checks.Error]:
    hook = _value(raw, "CLAIMS_HOOK")
    if hook is None or callable(hook):
        return
    hint = "Give the dotted path of a function (user, session_id) -> dict, or None."
    if not isinstance(hook, str):
        yield _error("CLAIMS_HOOK must be an import string or a callable.", hint, 15)
        return
    try:
        found = import_string(hook)
    except ImportError as exc:
        yield _error(f"CLAIMS_HOOK {hook!r} cannot be imported ({exc}).", hint, 15)
        return
    if not callable(found):
        yield _error(f"CLAIMS_HOOK {hook!r} is not callable.", hint, 15)


@checks.register(checks.Tags.security)
def check_fallback_limit(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    raw = getattr(settings, "JWT_SESSIONS", {})
    limit = raw.get("MAX_CONCURRENT_DB_FALLBACKS", 1) if isinstance(raw, dict) else 1
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
        return []
    return [_error("MAX_CONCURRENT_DB_FALLBACKS must be a positive integer.",
                   "It bounds this process's concurrent database fallbacks; the default "
                   "is 32.", 14)]


@checks.register()
def check_geoip(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """GEOIP_PATH set but unusable: logins still work, only without `location`."""
    from .geoip import GeoIPUnavailable, open_lookup

    raw = getattr(settings, "JWT_SESSIONS", {})
    path = raw.get("GEOIP_PATH") if isinstance(raw, dict) else None
    if not path:
        return []
    try:
        open_lookup(path)
    except GeoIPUnavailable as exc:
        return [checks.Warning(f"GeoIP is disabled: {exc}.",
                               hint="Point GEOIP_PATH at a GeoLite2/GeoIP2 City .mmdb file "
                                    "and install jwt_sessions[geoip], or remove GEOIP_PATH.",
                               id="jwt_sessions.W001")]
    return []
