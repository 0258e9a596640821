"""Python API for custom flows (MFA step-up, social login, tests)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import services
from .models import RevokeReason
from .tokens import AccessClaims


def issue_tokens(user: Any, request: Any = None,
                 amr: Iterable[str] = ()) -> dict[str, str]:
    """Open a session for `user` and return the login response body (JSON-ready).

    Same side effects as a login: a Session row, Redis, `session_created`; and
    `user_logged_in` when a request is given. `amr` names how the user proved who they
    are, as the access tokens' `amr` claim (RFC 8176: `["pwd"]`, `["pwd", "otp"]`,
    `["hwk"]`...); by default it is empty, since only the caller knows what its flow
    checked. `auth_time` is now.
    """
    return services.issue_tokens(user, request, amr=amr).as_dict()


def revoke_session(session_id: Any, reason: str = RevokeReason.API) -> bool:
    """Revoke one session; False if it is unknown or already ended."""
    return services.revoke_session(session_id, reason)


def revoke_user_sessions(user: Any, reason: str = RevokeReason.API,
                         keep_session_id: Any = None) -> int:
    """Revoke every active session of `user` (but `keep_session_id`); returns the count."""
    return services.revoke_user_sessions(user, reason, keep_session_id=keep_session_id)


def update_session_auth(user: Any, session_id: Any) -> bool:
    """Keep one session across a deliberate password change, as Django's
    `update_session_auth_hash` keeps the current login: call it before or after
    `user.save()`. False if the session is unknown, not the user's, or already ended."""
    return services.update_session_auth(user, session_id)
async def aauthenticate(token: str) -> AccessClaims:
    """Check an access token from async code (an ASGI view, a consumer), as DRF's
    authentication does: its claims, or the same 401/503 errors (`jwt_sessions.exceptions`).
    One Redis round trip and no SQL when Redis vouches for it; the event loop never waits
    on a socket or the database."""
    return await services.aauthenticate_access(token)
