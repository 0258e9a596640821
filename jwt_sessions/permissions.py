"""DRF permissions for sensitive actions: step-up authentication (RFC 9470)."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework.permissions import BasePermission

from .exceptions import MethodRequired, ReauthenticationRequired
from .gateway import holds_permission
from .tokens import AccessClaims

INTROSPECT_PERMISSION = "jwt_sessions.introspect_session"
# An RFC 8176 method name; nothing that could break out of the challenge's quotes.
_METHOD = re.compile(r"[A-Za-z0-9_.-]+")


def recent_authentication(max_age: int | timedelta) -> type[BasePermission]:
    """A permission class: the access token's user proved who they are (login or
    `reauthenticate/`) at most `max_age` ago (seconds or a timedelta).

        permission_classes = [IsAuthenticated, recent_authentication(300)]

    An older `auth_time` answers 401 `reauthentication_required` with
    `WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age="300"`;
    the client asks for the password, posts it to `reauthenticate/` and retries.
    A request not authenticated by a jwt_sessions access token is refused (DRF's
    401 or 403): nothing else says when its user last proved who they are.
    """
    limit = max_age if isinstance(max_age, timedelta) else timedelta(seconds=max_age)
    if limit <= timedelta(0):
        raise ValueError("max_age must be positive")
    seconds = int(limit.total_seconds())

    class RecentAuthentication(BasePermission):
        def has_permission(self, request: Any, view: Any) -> bool:
            claims = request.auth
            if not isinstance(claims, AccessClaims):
                return False
            if claims.auth_time is None or timezone.now() - claims.auth_time > limit:
                raise ReauthenticationRequired(seconds)
            return True

    RecentAuthentication.__name__ = RecentAuthentication.__qualname__ = (
        f"RecentAuthentication{seconds}s")
    return RecentAuthentication


def authenticated_with(*methods: str) -> type[BasePermission]:
    """A permission class: the access token's user proved who they are, when the session
    last authenticated (`auth_time`), with one of these methods (RFC 8176 names, as in
    the token's `amr`: `"pwd"`, `"otp"`, `"hwk"`, `"swk"`, `"mfa"`...).

        permission_classes = [IsAuthenticated, recent_authentication(300),
                              authenticated_with("hwk")]   # a passkey, in the last 5 min

    Otherwise 401 `reauthentication_required` with `WWW-Authenticate: Bearer
    error="insufficient_user_authentication", error_description="..."` (RFC 9470); the
    client steps up with one of those methods (django-allauth's reauthentication, or
    `api.issue_tokens(..., amr=...)` in a flow of its own) and retries with the new token.
    A request not authenticated by a jwt_sessions access token is refused (DRF's 401/403).
    """
    if not methods or not all(isinstance(m, str) and _METHOD.fullmatch(m) for m in methods):
        raise ValueError("authenticated_with needs one or more method names, e.g. 'hwk'")
    accepted = frozenset(methods)
    names = sorted(accepted)

    class AuthenticatedWith(BasePermission):
        def has_permission(self, request: Any, view: Any) -> bool:
            claims = request.auth
            if not isinstance(claims, AccessClaims):
                return False
            if accepted.isdisjoint(claims.amr):
                raise MethodRequired(names)
            return True

    AuthenticatedWith.__name__ = AuthenticatedWith.__qualname__ = (
        "AuthenticatedWith_" + "_".join(names))
    return AuthenticatedWith


class CanIntrospect(BasePermission):
    """The caller holds `jwt_sessions.introspect_session` (a gateway's service account)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return holds_permission(request, INTROSPECT_PERMISSION)  # no SQL on a repeat call
