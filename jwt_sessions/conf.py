"""The `JWT_SESSIONS` settings object: defaults, lazy reads, reload on `setting_changed`.

Values are read when first used and cached on the object; `override_settings` works
because the cache is dropped whenever Django reports that `JWT_SESSIONS` (or a setting a
default depends on) changed.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from django.conf import settings as django_settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=30),
    "SESSION_MAX_LIFETIME": None,
    "ROTATE_REFRESH_TOKENS": True,
    "REFRESH_REUSE_GRACE": timedelta(seconds=10),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": None,  # None: settings.SECRET_KEY
    "VERIFYING_KEY": None,
    "KEY_ID": None,
    "ADDITIONAL_VERIFYING_KEYS": {},
    "ISSUER": None,
    "AUDIENCE": None,
    "LEEWAY": timedelta(0),
    "CACHE_ALIAS": "default",
    "REDIS_KEY_PREFIX": "jwts:",
    "REDIS_FAILURE_POLICY": "database",
    "REDIS_RETRY_INTERVAL": timedelta(seconds=5),
    "BCRYPT_ROUNDS": 12,
    "MAX_SESSIONS_PER_USER": None,
    "MAX_SESSIONS_POLICY": "evict",  # or "refuse" (see docs/session-caps.md)
    "LAST_ACTIVITY_RESOLUTION": timedelta(minutes=1),
    "REVOKE_ON_PASSWORD_CHANGE": True,
    "REFRESH_COOKIE": None,
    "AUDIT_RETENTION": timedelta(days=30),
    "MAX_CONCURRENT_DB_FALLBACKS": 32,
    "GEOIP_PATH": None,
    "NEW_DEVICE_EMAIL": False,  # email the user on a login from a new device
    "CLAIMS_HOOK": None,
    "USER_AUTHENTICATION_RULE": "jwt_sessions.credentials.default_user_authentication_rule",
    "EXTEND_USER_ADMIN": True,  # the user admin shows sessions (see docs/admin.md)
    "EVENTS_HEARTBEAT": timedelta(seconds=1),
    "LOCAL_CACHE": None,
    "DPOP": {},  # sender-constrained sessions (RFC 9449): see jwt_sessions.dpop.settings
    "SHARED_SIGNALS": None,  # a dict turns Shared Signals on (docs/shared-signals.md)
}

DURATION_KEYS = (
    "ACCESS_TOKEN_LIFETIME",
    "REFRESH_TOKEN_LIFETIME",
    "SESSION_MAX_LIFETIME",
    "REFRESH_REUSE_GRACE",
    "LEEWAY",
    "AUDIT_RETENTION",
    "LAST_ACTIVITY_RESOLUTION",
    "REDIS_RETRY_INTERVAL",
    "EVENTS_HEARTBEAT",
)

FAILURE_POLICIES = ("database", "deny")


def as_timedelta(value: Any) -> Any:
    """Accept an int/float of seconds wherever a duration is expected. A number no
    timedelta holds (inf, NaN, 10**20) is returned as it is: the checks report it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return timedelta(seconds=value)
        except (OverflowError, ValueError):
            return value
    return value


class JWTSessionsSettings:
    """Attribute access to `settings.JWT_SESSIONS` merged over `DEFAULTS`."""

    def __init__(self) -> None:
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(django_settings, "JWT_SESSIONS", None)
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid JWT_SESSIONS setting: {name!r}")
        value = self.user_settings.get(name, DEFAULTS[name])
        if name in DURATION_KEYS:
            value = as_timedelta(value)
        if name == "SIGNING_KEY" and value is None:
            value = django_settings.SECRET_KEY
        self._cached.add(name)
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        for name in self._cached:
            self.__dict__.pop(name, None)
        self._cached.clear()
        for function in _per_settings:
            function.cache_clear()


F = TypeVar("F", bound=Callable[..., Any])
_per_settings: list[Any] = []


def cached_per_settings(function: F) -> F:
    """Memoise a function of the settings (parsed keys, a semaphore sized by a setting,
    a GeoIP reader) until the settings change: `functools.cache`, cleared on reload."""
    cached = functools.cache(function)
    _per_settings.append(cached)
    return cast(F, cached)


jwt_settings = JWTSessionsSettings()


_WATCHED = {"JWT_SESSIONS", "SECRET_KEY", "DEBUG", "REST_FRAMEWORK", "CACHES",
            "AUTH_USER_MODEL"}


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in _WATCHED:
        jwt_settings.reload()


setting_changed.connect(_reload, dispatch_uid="jwt_sessions_settings_reload")
