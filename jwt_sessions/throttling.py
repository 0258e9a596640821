"""Rate limits for login and refresh, as DRF throttles.

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

import base64
import binascii
import hashlib
import logging
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from rest_framework.authentication import get_authorization_header
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from . import metrics
from .clients import client_network
from .redis import mirror
from .redis.mirror import StoreUnavailable
from .serializers import USERNAME_MAX_LENGTH, is_utf8_encodable

logger = logging.getLogger("jwt_sessions")

DEFAULT_RATES = {
    "jwt_sessions_login": "20/min",
    "jwt_sessions_login_user": "10/min",
    "jwt_sessions_refresh": "60/min",
    "jwt_sessions_introspect": "6000/min",
}
_SLOTS = "_jwt_sessions_throttle_slots"


def parse_rate(rate: str) -> tuple[int, int]:
    """DRF's rate syntax, parsed by DRF: "10/min" -> (10, 60)."""
    # DRF's parser is an instance method that reads nothing from the instance; ours
    # cannot be a SimpleRateThrottle, whose history list is what we replace.
    count, duration = SimpleRateThrottle.parse_rate(None, rate)  # type: ignore[arg-type]
    if count is None or duration is None:
        raise ValueError(f"not a rate: {rate!r}")
    return count, duration


class _SessionThrottle(BaseThrottle):
    """Counts requests per identity (by default the client IP) in fixed windows."""

    scope: str = ""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def get_rate(self) -> str | None:
        rates = {**DEFAULT_RATES, **(api_settings.DEFAULT_THROTTLE_RATES or {})}
        rate = rates.get(self.scope)
        return None if rate is None else str(rate)

    def get_ident(self, request: Any) -> str | None:  # type: ignore[override]
        return client_network(request) or "unknown"

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
        metrics.throttled(self.scope)
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
    made before any of them had failed. The slot is held on the request and given back
    by the throttle itself: on Django's `user_logged_in` for that request (however the
    view logs the user in), or when the request is refused by another throttle.

    The name counts as the login reads it, folded further: stripped as the serializer
    strips it, then normalised and case-folded, so `" Alice\t"`, `"ALICE"` and
    `"ａｌｉｃｅ"` are one person to the throttle.
    """

    scope = "jwt_sessions_login_user"

    def get_ident(self, request: Any) -> str | None:  # type: ignore[override]
        username = self.get_username(request)
        return fold_username(username) if username else None

    def get_username(self, request: Any) -> str | None:
        """The name an attempt is counted under: the one the login names."""
        return username_of(request)

    def counted(self, request: Any, key: str, duration: int) -> None:
        _hold(request, key, duration)


@dataclass(frozen=True)
class _Slot:
    key: str
    duration: int


def _held_slots(request: Any) -> list[_Slot]:
    """The slots this request holds, kept on the Django request (which the login
    signal carries) rather than on DRF's wrapper of it."""
    django_request = getattr(request, "_request", request)
    slots = getattr(django_request, _SLOTS, None)
    if slots is None:
        slots = []
        setattr(django_request, _SLOTS, slots)
    return slots


def _hold(request: Any, key: str, duration: int) -> None:
    """The request keeps its slot, unless its password proves right (give_back_slots)."""
    _held_slots(request).append(_Slot(key, duration))


def give_back_slots(request: Any) -> None:
    """Give back every slot the request holds (same window), at most once each."""
    slots = _held_slots(request)
    while slots:
        slot = slots.pop()
        try:
            _SessionThrottle._add(slot.key, -1, slot.duration)
        except StoreUnavailable as exc:
            logger.warning("Throttle store unavailable (%s): slot not given back", exc)


class ReauthenticateUserRateThrottle(LoginUserRateThrottle):
    """Failed reauthentications count in the same per-username bucket as failed logins,
    so a stolen access token buys no extra password guesses."""

    def get_username(self, request: Any) -> str | None:
        return request.user.get_username() if request.user.is_authenticated else None


class BasicAddressRateThrottle(LoginRateThrottle):
    """Password checks of HTTP Basic credentials per address, in the login's bucket.
    Unlike a login's, a check that succeeds gives its slot back: a service account's
    steady calls are no guesses."""

    def counted(self, request: Any, key: str, duration: int) -> None:
        _hold(request, key, duration)


class BasicUserRateThrottle(LoginUserRateThrottle):
    """Failed HTTP Basic credentials per username and address, at the login's rate.

    Per address too, unlike the login's bucket: strangers' wrong passwords for a
    gateway's account must not lock the gateway itself out of introspection. What this
    door can tell a guesser is bounded elsewhere: only an account that may introspect
    is ever told its password was right (`IntrospectView`), every other account's
    right password is refused as a wrong one."""

    def get_ident(self, request: Any) -> str | None:  # type: ignore[override]
        username = basic_username(request)
        if not username:
            return None
        return f"{fold_username(username)}|{client_network(request) or 'unknown'}"


class IntrospectRateThrottle(_SessionThrottle):
    """Introspection calls per caller (the gateway's account, not its address)."""

    scope = "jwt_sessions_introspect"

    def get_ident(self, request: Any) -> str | None:  # type: ignore[override]
        return f"user:{request.user.pk}" if request.user.is_authenticated else None


@receiver(user_logged_in, dispatch_uid="jwt_sessions.throttling.give_back_slots")
def _logged_in(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """Only failed logins count: a login that succeeded gives its slots back."""
    if request is not None:
        give_back_slots(request)


def username_of(request: Any) -> str | None:
    """The username a login request names, if the login serializer would accept it."""
    data = getattr(request, "data", None)
    if not isinstance(data, dict):
        return None
    value = data.get(get_user_model().USERNAME_FIELD)
    if not isinstance(value, str) or not is_utf8_encodable(value):
        return None  # the login serializer refuses it with a 400
    value = value.strip()  # as the serializer does, before its length check
    if not value or len(value) > USERNAME_MAX_LENGTH:
        return None  # a 400 too, before any password is checked
    return value


def _authorization(request: Any) -> list[bytes]:
    """The Authorization header's words, split as DRF's authentication classes split
    them (at any whitespace: a tab separates the scheme too)."""
    return get_authorization_header(request).split()


def presents_basic_credentials(request: Any) -> bool:
    """The request's Authorization header is of the Basic scheme (a password to check)."""
    words = _authorization(request)
    return bool(words) and words[0].lower() == b"basic"


def basic_username(request: Any) -> str | None:
    """The user id of `Authorization: Basic` credentials, decoded as DRF's
    BasicAuthentication decodes them; None if there is none to check."""
    words = _authorization(request)
    if len(words) != 2 or words[0].lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(words[1])
    except (binascii.Error, ValueError):
        return None  # refused before any password is checked
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")
    userid, colon, _ = text.partition(":")
    return userid if colon else None


def fold_username(username: str) -> str:
    """One spelling per person: the user model's normalisation (NFKC for Django's),
    case-folded, then NFKC again and stripped (folding can undo normal form)."""
    normalize = getattr(get_user_model(), "normalize_username", None)
    name = normalize(username) if normalize else unicodedata.normalize("NFKC", username)
    return unicodedata.normalize("NFKC", name.casefold()).strip()
