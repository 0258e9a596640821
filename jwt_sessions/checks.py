"""System checks: bad `JWT_SESSIONS` settings fail at start-up, with how to fix them;
`manage.py check --deploy` also warns about settings that are fine in development only.

Every id means one problem (docs/checks.md lists them); a new problem takes a new id.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.utils.module_loading import import_string

from .conf import DEFAULTS, DURATION_KEYS, FAILURE_POLICIES, as_timedelta
from .session_caps import SessionCapPolicy

_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_COOKIE_KEYS = {"name", "path", "domain", "secure", "samesite"}
_LOCAL_CACHE_KEYS = {"max_age", "max_entries"}


def _error(msg: str, hint: str, number: int) -> checks.Error:
    return checks.Error(msg, hint=hint, id=f"jwt_sessions.E{number:03d}")


def _warning(msg: str, hint: str, number: int) -> checks.Warning:
    return checks.Warning(msg, hint=hint, id=f"jwt_sessions.W{number:03d}")


@checks.register(checks.Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    raw = getattr(settings, "JWT_SESSIONS", {})
    if not isinstance(raw, dict):
        return [_error("JWT_SESSIONS must be a dict.", "Set JWT_SESSIONS = {...}.", 1)]
    return [*_unknown_keys(raw), *_durations(raw), *_algorithm_and_keys(raw),
            *_policies(raw), *_cookie(raw), *_local_cache(raw), *_claims_hook(raw),
            *_user_rule(raw)]


def _unknown_keys(raw: dict) -> Iterator[checks.Error]:
    for key in sorted(set(raw) - set(DEFAULTS)):
        yield _error(f"Unknown JWT_SESSIONS setting {key!r}.",
                     f"Remove it, or use one of: {', '.join(sorted(DEFAULTS))}.", 15)


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
                         ("REFRESH_TOKEN_LIFETIME", "30 days"),
                         ("EVENTS_HEARTBEAT", "1 second")):
        value = as_timedelta(_value(raw, key))
        if isinstance(value, timedelta) and value <= timedelta(0):
            yield _error(f"{key} must be positive.", f"Use e.g. {example}.", 16)
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
                         "Give a PEM-encoded key of the algorithm's type.", 18)


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
                         "HMAC needs a random secret; PEM keys go with RS*/ES*/EdDSA.", 17)


def _policies(raw: dict) -> Iterator[checks.Error]:
    if _value(raw, "REDIS_FAILURE_POLICY") not in FAILURE_POLICIES:
        yield _error("REDIS_FAILURE_POLICY must be 'database' or 'deny'.",
                     "'database' keeps serving from the database; 'deny' answers 503.", 7)
    limit = _value(raw, "MAX_SESSIONS_PER_USER")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                              or limit < 1):
        yield _error("MAX_SESSIONS_PER_USER must be None or a positive integer.",
                     "None means no limit; e.g. 5 ends the least recent session beyond five.",
                     8)
    if _value(raw, "MAX_SESSIONS_POLICY") not in SessionCapPolicy.values:
        yield _error("MAX_SESSIONS_POLICY must be 'evict' or 'refuse'.",
                     "'evict' (the default) ends the least recently active session to make "
                     "room; 'refuse' answers a login over the cap 403 max_sessions.", 29)
    rounds = _value(raw, "BCRYPT_ROUNDS")
    if not isinstance(rounds, int) or not 4 <= rounds <= 31:
        yield _error("BCRYPT_ROUNDS must be an integer from 4 to 31.", "The default is 12.",
                     9)
    yield from _cache(raw)
    extra = _value(raw, "ADDITIONAL_VERIFYING_KEYS")
    if not isinstance(extra, dict):
        yield _error("ADDITIONAL_VERIFYING_KEYS must be a dict {kid: key}.",
                     "Map each retired key's KEY_ID to its verifying key, e.g. {'2024': pem}.",
                     11)


def _cache(raw: dict) -> Iterator[checks.Error]:
    """CACHE_ALIAS names a django-redis cache whose LOCATION parses: any other cache
    would send every request to the database and carry no revocation event."""
    alias = _value(raw, "CACHE_ALIAS")
    cache = _cache_config(raw)
    if cache is None:
        yield _error(f"CACHE_ALIAS {alias!r} is not in CACHES.",
                     "Configure a django-redis cache under that alias.", 10)
        return
    if not _is_django_redis(cache.get("BACKEND")):
        yield _error(f"The CACHE_ALIAS cache {alias!r} is not a django-redis cache.",
                     "Use BACKEND 'django_redis.cache.RedisCache' (see docs/securing-redis.md"
                     "); jwt_sessions keeps its sessions and events in Redis.", 30)
    try:
        _redis_urls(cache.get("LOCATION"))
    except ValueError as exc:
        yield _error(f"The CACHE_ALIAS cache {alias!r} has a LOCATION that is no URL "
                     f"({exc}).", "For example 'redis://127.0.0.1:6379/0'.", 31)


def _cache_config(raw: dict) -> dict | None:
    """The CACHES entry CACHE_ALIAS names, or None (no such entry, or not a string)."""
    alias = _value(raw, "CACHE_ALIAS")
    caches = getattr(settings, "CACHES", {})
    if not isinstance(alias, str) or not isinstance(caches, dict):
        return None
    cache = caches.get(alias)
    return cache if isinstance(cache, dict) else None


def _is_django_redis(backend: Any) -> bool:
    from django_redis.cache import RedisCache

    try:
        backend_class = import_string(backend) if isinstance(backend, str) else None
    except ImportError:
        return False
    return isinstance(backend_class, type) and issubclass(backend_class, RedisCache)


def _cookie(raw: dict) -> Iterator[checks.Error]:
    cookie = _value(raw, "REFRESH_COOKIE")
    if cookie is None:
        return
    if not isinstance(cookie, dict):
        yield _error("REFRESH_COOKIE must be None or a dict.", "Use {} for the defaults.", 12)
        return
    for key in sorted(set(cookie) - _COOKIE_KEYS):
        yield _error(f"Unknown REFRESH_COOKIE option {key!r}.",
                     f"Use: {', '.join(sorted(_COOKIE_KEYS))}.", 19)
    samesite = cookie.get("samesite", "Lax")
    if samesite not in ("Lax", "Strict", "None"):
        yield _error("REFRESH_COOKIE samesite must be 'Lax', 'Strict' or 'None'.",
                     "Spelled as browsers expect it, capitalised; the default is 'Lax'.", 20)
    secure = cookie.get("secure", not settings.DEBUG)
    if str(cookie.get("name", "")).startswith("__Host-") and (
            cookie.get("path") != "/" or cookie.get("domain") or not secure):
        yield _error("A __Host- refresh cookie needs path '/', no domain and secure on.",
                     "Set path='/', remove domain, keep secure=True, or rename the cookie.",
                     13)
    if samesite == "None" and not secure:
        yield _error("REFRESH_COOKIE samesite 'None' requires secure.",
                     "Browsers drop a SameSite=None cookie that is not Secure: set "
                     "secure=True (and serve HTTPS), or use samesite 'Lax'.", 21)


def _local_cache(raw: dict) -> Iterator[checks.Error]:
    hint = 'For example {"max_age": timedelta(seconds=30), "max_entries": 10_000}.'
    config = _value(raw, "LOCAL_CACHE")
    if config is None:
        return
    if not isinstance(config, dict):
        yield _error("LOCAL_CACHE must be None or a dict.", hint, 23)
        return
    for key in sorted(set(config) - _LOCAL_CACHE_KEYS):
        yield _error(f"Unknown LOCAL_CACHE option {key!r}.",
                     f"Use: {', '.join(sorted(_LOCAL_CACHE_KEYS))}.", 24)
    max_age = as_timedelta(config.get("max_age", timedelta(seconds=1)))
    if not isinstance(max_age, timedelta) or max_age <= timedelta(0):
        yield _error("LOCAL_CACHE max_age must be a positive timedelta (or seconds).",
                     hint, 25)
    access = as_timedelta(_value(raw, "ACCESS_TOKEN_LIFETIME"))
    if (isinstance(max_age, timedelta) and isinstance(access, timedelta)
            and max_age > access):
        yield _error("LOCAL_CACHE max_age is longer than ACCESS_TOKEN_LIFETIME.",
                     "It bounds how long a revocation may go unseen: keep it to seconds.", 26)
    entries = config.get("max_entries", 1)
    if not isinstance(entries, int) or isinstance(entries, bool) or entries < 1:
        yield _error("LOCAL_CACHE max_entries must be a positive integer.", hint, 27)


def _claims_hook(raw: dict) -> Iterator[checks.Error]:
    problem = _function_problem(raw, "CLAIMS_HOOK", optional=True)
    if problem:
        yield _error(problem, "Give the dotted path of a function (user, session_id) -> "
                     "dict, or None.", 22)


def _user_rule(raw: dict) -> Iterator[checks.Error]:
    problem = _function_problem(raw, "USER_AUTHENTICATION_RULE")
    if problem:
        yield _error(problem, "Give the dotted path of a function (user) -> bool; the "
                     "default is 'jwt_sessions.credentials.default_user_authentication_rule'.",
                     28)


def _function_problem(raw: dict, key: str, optional: bool = False) -> str | None:
    """What is wrong with a setting naming a function (an import string or a callable, or
    None if optional), or None."""
    value = _value(raw, key)
    if (value is None and optional) or callable(value):
        return None
    if not isinstance(value, str):
        return f"{key} {value!r} must be an import string or a callable."
    try:
        if not callable(import_string(value)):
            return f"{key} {value!r} is not callable."
    except ImportError as exc:
        return f"{key} {value!r} cannot be imported ({exc})."
    return None


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


# ------------------------------------------------------------------ check --deploy
_MIN_DEPLOY_BCRYPT_ROUNDS = 10


@checks.register(checks.Tags.security, deploy=True)
def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Settings that are fine while developing and weak in production."""
    raw = getattr(settings, "JWT_SESSIONS", {})
    if not isinstance(raw, dict):
        return []  # E001
    return [*_deploy_cookie(raw), *_deploy_redis(raw), *_deploy_signing_key(raw),
            *_deploy_bcrypt(raw)]


def _deploy_cookie(raw: dict) -> Iterator[checks.Warning]:
    cookie = _value(raw, "REFRESH_COOKIE")
    if isinstance(cookie, dict) and not cookie.get("secure", not settings.DEBUG):
        yield _warning(
            "The refresh cookie is not Secure: browsers send it over plain HTTP too, where "
            "anyone on the way can read a 30-day credential.",
            "Set REFRESH_COOKIE['secure'] = True (the default when DEBUG is off) and serve "
            "the site over HTTPS only.", 2)


def _deploy_redis(raw: dict) -> Iterator[checks.Warning]:
    """Redis holds the revocation cache and the throttles: reach it with TLS (unless it
    is on this host) and a password."""
    if settings.DEBUG:
        return
    alias = _value(raw, "CACHE_ALIAS")
    cache = _cache_config(raw)
    if cache is None:
        return  # E010
    try:
        urls = _redis_urls(cache.get("LOCATION"))
    except ValueError:
        return  # E031
    remote_plain = [url.hostname or "?" for url in urls
                    if url.scheme == "redis" and not _on_this_host(url)]
    if remote_plain:
        yield _warning(
            f"The {alias!r} cache reaches Redis without TLS ({', '.join(remote_plain)}).",
            "Use a rediss:// LOCATION (TLS) for a Redis on another host; see "
            "docs/securing-redis.md.", 3)
    if urls and not (all(url.password for url in urls) or _configured_password(cache)):
        yield _warning(
            f"The {alias!r} cache reaches Redis without a password.",
            "Require one in Redis (an ACL user with only the commands jwt_sessions uses) and "
            "give it in LOCATION (rediss://user:password@host:6379/0) or "
            "OPTIONS['PASSWORD']; see docs/securing-redis.md.", 4)


def _redis_urls(location: Any) -> list[Any]:
    """The URLs of a LOCATION: one string, comma-separated strings, or a list; raises
    ValueError for one that cannot be parsed (an unclosed IPv6 bracket, a bad port)."""
    from urllib.parse import urlsplit

    if isinstance(location, str):
        location = location.split(",")
    if not isinstance(location, (list, tuple)):
        return []
    urls = [urlsplit(item.strip()) for item in location if isinstance(item, str)]
    for url in urls:
        url.port  # noqa: B018 - parses the port, raising ValueError for a bad one
    return urls


def _on_this_host(url: Any) -> bool:
    """A loopback address or a socket: the traffic never leaves the machine."""
    from ipaddress import ip_address

    if url.scheme == "unix" or url.hostname == "localhost":
        return True
    try:
        return ip_address(url.hostname or "").is_loopback
    except ValueError:
        return False


def _configured_password(cache: dict) -> bool:
    """A password given in OPTIONS: django-redis's PASSWORD, or the pool's `password`
    (django-redis's CONNECTION_POOL_KWARGS, Django's own Redis backend's OPTIONS)."""
    options = cache.get("OPTIONS") or {}
    if not isinstance(options, dict):
        return False
    pool = options.get("CONNECTION_POOL_KWARGS") or {}
    return bool(options.get("PASSWORD") or options.get("password")
                or (isinstance(pool, dict) and pool.get("password")))


def _deploy_signing_key(raw: dict) -> Iterator[checks.Warning]:
    """HMAC keys that are no strong secret of their own: whoever guesses one forges
    access tokens.

    SECRET_KEY signs when SIGNING_KEY is unset. An HMAC key equal to SECRET_KEY (as text
    or bytes) ties the two secrets together: rotating SECRET_KEY signs every user out, and
    whoever learns one holds both. A weak key is judged as Django's security.W009 judges
    SECRET_KEY (its length is E005's, by the hash). An asymmetric algorithm never falls
    back (E006) and a SECRET_KEY given as its key is no PEM (E018).
    """
    algorithm = _value(raw, "ALGORITHM")
    if not isinstance(algorithm, str) or not algorithm.startswith("HS"):
        return
    hint = ("Give JWT_SESSIONS['SIGNING_KEY'] its own random secret (python -c \"import "
            "secrets; print(secrets.token_urlsafe(64))\"), kept out of the code like "
            "SECRET_KEY; or sign with an asymmetric ALGORITHM.")
    for name, problem in _weak_hmac_keys(raw):
        yield _warning(f"{name} {problem}.", hint, 5)


def _weak_hmac_keys(raw: dict) -> Iterator[tuple[str, str]]:
    """(key name, what is wrong) of each HMAC key that is no strong secret of its own."""
    signing = raw.get("SIGNING_KEY")
    django_keys = [_as_bytes(key) for key in
                   [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]]
    if not signing or _as_bytes(signing) in django_keys:
        yield "SIGNING_KEY", "is unset or Django's SECRET_KEY: access tokens are signed with it"
        return
    for name, key in {"SIGNING_KEY": signing, **_additional(raw)}.items():
        if _is_weak(_as_bytes(key)):
            yield name, ("is a guessable HMAC secret (few distinct characters, or Django's "
                         f"{SECRET_KEY_INSECURE_PREFIX!r} prefix)")


def _as_bytes(key: Any) -> Any:
    return key.encode() if isinstance(key, str) else key


def _is_weak(key: Any) -> bool:
    """Django's judgement of SECRET_KEY, but its length (E005 checks that per hash)."""
    return isinstance(key, bytes) and (
        len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or key.startswith(SECRET_KEY_INSECURE_PREFIX.encode()))


def _deploy_bcrypt(raw: dict) -> Iterator[checks.Warning]:
    rounds = _value(raw, "BCRYPT_ROUNDS")
    if isinstance(rounds, int) and 4 <= rounds < _MIN_DEPLOY_BCRYPT_ROUNDS:
        yield _warning(
            f"BCRYPT_ROUNDS is {rounds}, below {_MIN_DEPLOY_BCRYPT_ROUNDS}.",
            f"Use at least {_MIN_DEPLOY_BCRYPT_ROUNDS} (the default is 12): the bcrypt hash "
            "is what a database reader holds of each refresh secret; fewer rounds are for "
            "test settings.", 6)
