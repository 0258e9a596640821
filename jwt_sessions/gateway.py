"""Introspection at gateway speed: an API gateway introspects every request it forwards,
with the same access token of its own service account each time. Its token is checked
against Redis on every call (a revoked gateway session is refused at once, as any
session is), in the same round trip as the token it asks about; whether its user holds
the permission is remembered per access token, for at most PERMISSION_MEMO_SECONDS: a
repeat call loads no user and no permission rows.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .access import checked_together
from .authentication import bearer_token
from .exceptions import AuthenticationError
from .parsers import FORM
from .tokens import AccessClaims

# A permission taken away from a gateway's account counts within this many seconds;
# its sessions' revocation (deactivation, logout, the admin) counts at once.
PERMISSION_MEMO_SECONDS = 60.0
_MEMO_SIZE = 1024

_memo: dict[tuple[str, str], float] = {}  # (access jti, permission) -> valid until
_lock = threading.Lock()


def holds_permission(request: Any, permission: str) -> bool:
    """`request.user.has_perm(permission)`, remembered for the caller's access token."""
    user = request.user
    if not (user and user.is_authenticated):
        return False
    claims = request.auth
    if not isinstance(claims, AccessClaims):
        return bool(user.has_perm(permission))
    key, now = (claims.jti, permission), time.monotonic()
    with _lock:
        until = _memo.get(key)
    if until is not None and now < until:
        return True
    if not user.has_perm(permission):
        return False
    until = min(now + PERMISSION_MEMO_SECONDS,
                now + max(claims.expires_at.timestamp() - time.time(), 0.0))
    with _lock:
        _memo[key] = until
        while len(_memo) > _MEMO_SIZE:
            _memo.pop(next(iter(_memo)))
    return True


@contextmanager
def caller_and_token_together(request: Any) -> Iterator[None]:
    """Within the block, the caller's Bearer token and the form's `token` are checked
    against Redis in one round trip (see `access.checked_together`)."""
    tokens = []
    try:
        caller = bearer_token(request.META.get("HTTP_AUTHORIZATION", ""))
    except AuthenticationError:
        caller = None
    form = request.content_type == FORM  # parsed here by Django, once (see parsers.FormParser)
    asked = request.POST.get("token") if request.method == "POST" and form else None
    if caller and asked:
        tokens = [caller, asked]
    with checked_together(tokens):
        yield


def forget() -> None:
    with _lock:
        _memo.clear()
