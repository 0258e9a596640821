"""Rate limits for login and refresh, as DRF throttles (SPEC §5).

Rates come from DRF's `DEFAULT_THROTTLE_RATES` (read at call time, so
`override_settings` works) with our defaults beneath; counts live in the cache named by
`CACHE_ALIAS`. A throttle whose cache is down follows `REDIS_FAILURE_POLICY`.
"""
from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import caches
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .clients import client_ip
from .conf import jwt_settings
from .exceptions import ServiceUnavailable

logger = logging.getLogger("jwt_sessions")

DEFAULT_RATES = {
    "jwt_sessions_login": "20/min",
    "jwt_sessions_login_user": "10/min",
    "jwt_sessions_refresh": "60/min",
}
_CACHE_ERRORS = (RedisError, ConnectionInterrupted, ConnectionError, OSError)


class _SessionThrottle(SimpleRateThrottle):
    """A SimpleRateThrottle keyed on our notion of client IP, safe when its cache dies."""

    @property
    def cache(self):  # type: ignore[override]
        return caches[jwt_settings.CACHE_ALIAS]

    def get_rate(self) -> str | None:
        rates = {**DEFAULT_RATES, **(api_settings.DEFAULT_THROTTLE_RATES or {})}
        return rates.get(self.scope)

    def cache_key_for(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_key_for(client_ip(request) or "unknown")

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except _CACHE_ERRORS as exc:
            return _cache_down(exc)


def _cache_down(exc: Exception) -> bool:
    logger.warning("Throttle cache unavailable (%s)", type(exc).__name__)
    if jwt_settings.REDIS_FAILURE_POLICY == "deny":
        raise ServiceUnavailable()
    return True


class LoginRateThrottle(_SessionThrottle):
    scope = "jwt_sessions_login"


class RefreshRateThrottle(_SessionThrottle):
    scope = "jwt_sessions_refresh"


class LoginUserRateThrottle(_SessionThrottle):
    """Failed logins per username: checked before, counted only when a login fails."""

    scope = "jwt_sessions_login_user"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        username = username_of(request)
        return self.cache_key_for(username.lower()) if username else None

    def throttle_success(self) -> bool:
        return True  # a request that may proceed is not yet a failure

    def record_failure(self, request: Any, view: Any) -> None:
        """Count one failed login for the request's username."""
        if self.rate is None:
            return
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return
        try:
            self.history = self.cache.get(self.key, [])
            self.now = self.timer()
            self.history = [t for t in self.history if t > self.now - self.duration]
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)
        except _CACHE_ERRORS as exc:
            _cache_down(exc)


def username_of(request: Any) -> str | None:
    """The username a login request names, if it names one as a string."""
    data = getattr(request, "data", None)
    if not isinstance(data, dict):
        return None
    value = data.get(get_user_model().USERNAME_FIELD)
    return value[:256] if isinstance(value, str) and value else None
