"""Rate limits for login and refresh, as DRF throttles (SPEC §5).

Rates come from DRF's `DEFAULT_THROTTLE_RATES` (read at call time, so
`override_settings` works) with our defaults beneath; counts live in the session store's
Redis, under `REDIS_KEY_PREFIX` like every key of ours. A throttle whose Redis is down
follows `REDIS_FAILURE_POLICY`.

Counting is one atomic increment per request in a fixed window (DRF's SimpleRateThrottle
reads, edits and writes back a list, so concurrent requests overwrite each other's counts
and a parallel burst slips through). A fixed window admits at most twice the rate across
a window boundary; an attacker gains nothing from concurrency.
"""
from __future__ import annotations

import hashlib
import logging
import time
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from . import mirror
from .clients import client_ip
from .mirror import StoreUnavailable
from .serializers import is_utf8_encodable

logger = logging.getLogger("jwt_sessions")

DEFAULT_RATES = {
    "jwt_sessions_login": "20/min",
    "jwt_sessions_login_user": "10/min",
    "jwt_sessions_refresh": "60/min",
    "jwt_sessions_introspect": "6000/min",
}
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SLOT = "_jwt_sessions_login_slot"


def parse_rate(rate: str) -> tuple[int, int]:
    """DRF's rate syntax: "10/min" -> (10, 60)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period[0]]


class _SessionThrottle(BaseThrottle):
    """Counts requests per identity (by default the client IP) in fixed windows."""

    scope: str = ""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def get_rate(self) -> str | None:
        rates = {**DEFAULT_RATES, **(api_settings.DEFAULT_THROTTLE_RATES or {})}
        return rates.get(self.scope)

    def get_ident(self, request: Any) -> str | None:  # type: ignore[override]
        return client_ip(request) or "unknown"

    def _window(self) -> tuple[int, int, str, float] | None:
        """(limit, window seconds, window key suffix, seconds left) or None: no limit."""
        rate = self.get_rate()
        if rate is None:
            return None
        limit, duration = parse_rate(rate)
        now = time.time()  # looked up per call: follows a frozen clock in tests
        index = int(now // duration)
        return limit, duration, str(index), (index + 1) * duration - now

    def _key(self, ident: str, window: str) -> str:
        # Hashed: any username is a safe key, and none is stored in clear.
        digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
        return f"{self.scope}:{digest}:{window}"

    @staticmethod
    def _add(key: str, amount: int, duration: int) -> int:
        """Atomically add to the window's counter (created on first use)."""
        return mirror.add_to_counter(key, amount, timedelta(seconds=duration + 1))

    def allow_request(self, request: Any, view: Any) -> bool:
        window = self._window()
        ident = self.get_ident(request)
        if window is None or ident is None:
            return True
        limit, duration, suffix, left = window
        key = self._key(ident, suffix)
        try:
            count = self._add(key, 1, duration)
        except StoreUnavailable as exc:
            return _store_down(exc)
        self.counted(request, key, duration)
        if count <= limit:
            return True
        self.retry_after = left
        return False

    def counted(self, request: Any, key: str, duration: int) -> None:
        """Hook: the request was counted under `key`."""

    def wait(self) -> float | None:
        return self.retry_after


def _store_down(exc: Exception) -> bool:
    """Under REDIS_FAILURE_POLICY "deny" a 503; else let the request through (and say so)."""
    mirror.apply_failure_policy()
    logger.warning("Throttle store unavailable (%s): not counting", exc)
    return True


class LoginRateThrottle(_SessionThrottle):
    scope = "jwt_sessions_login"


class RefreshRateThrottle(_SessionThrottle):
    scope = "jwt_sessions_refresh"


class LoginUserRateThrottle(_SessionThrottle):
    """Failed logins per username.

    Every attempt takes a slot before the password is checked and a successful login
    gives it back, so only failures count, and parallel guesses cannot all pass a check
    made before any of them had failed.
    """

    scope = "jwt_sessions_login_user"

    def get_ident(self, request: Any) -> str | None:  # type: ignore[override]
        username = self.get_username(request)
        return username.lower() if username else None

    def get_username(self, request: Any) -> str | None:
        """The name an attempt is counted under: the one the login names."""
        return username_of(request)

    def counted(self, request: Any, key: str, duration: int) -> None:
        setattr(request, _SLOT, (key, duration))

    @staticmethod
    def refund(request: Any) -> None:
        """Give back the slot a login took, once it has succeeded (same window)."""
        slot = getattr(request, _SLOT, None)
        if slot is None:
            return
        try:
            LoginUserRateThrottle._add(slot[0], -1, slot[1])
        except StoreUnavailable as exc:
            logger.warning("Throttle store unavailable (%s): slot not given back", exc)


class ReauthenticateUserRateThrottle(LoginUserRateThrottle):
    """Failed reauthentications count in the same per-username bucket as failed logins,
    so a stolen access token buys no extra password guesses."""

    def get_username(self, request: Any) -> str | None:
        return request.user.get_username() if request.user.is_authenticated else None


class IntrospectRateThrottle(_SessionThrottle):
    """Introspection calls per caller (the gateway's account, not its address)."""

    scope = "jwt_sessions_introspect"

    def get_ident(self, request: Any) -> str | None:  # type: ignore[override]
        return f"user:{request.user.pk}" if request.user.is_authenticated else None


def username_of(request: Any) -> str | None:
    """The username a login request names, if it names one as a string."""
    data = getattr(request, "data", None)
    if not isinstance(data, dict):
        return None
    value = data.get(get_user_model().USERNAME_FIELD)
    if not isinstance(value, str) or not value or not is_utf8_encodable(value):
        return None  # the login serializer refuses it with a 400
    return value[:256]
