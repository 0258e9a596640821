"""Python API for custom flows (MFA step-up, social login, tests)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import services
from .dpop import doors as dpop
from .models import RevokeReason
from .tokens import AccessClaims


def issue_tokens(user: Any, request: Any = None,
                 amr: Iterable[str] = ()) -> dict[str, str]:
    """Open a session for `user` and return the login response body (JSON-ready).

    Same side effects as a login: a Session row, Redis, `session_created`; and
    `user_logged_in` when a request is given. `amr` names how the user proved who they
    are, as the access tokens' `amr` claim (RFC 8176: `["pwd"]`, `["pwd", "otp"]`,
    `["hwk"]`...); by default it is empty, since only the caller knows what its flow
    checked. `auth_time` is now. A request that carries a DPoP proof binds the session
    to its key, as a login does (and one without is refused when DPoP is required).
    """
    dpop_jkt = "" if request is None else dpop.key_of_token_request(request).spend()
    return services.issue_tokens(user, request, amr=amr, dpop_jkt=dpop_jkt).as_dict()


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
async def aauthenticate(token: str, *, dpop_proof: str | None = None, method: str = "GET",
                        uri: str = "") -> AccessClaims:
    """Check an access token from async code (an ASGI view, a consumer), as DRF's
    authentication does: its claims, or the same 401/503 errors (`jwt_sessions.exceptions`,
    `jwt_sessions.dpop.errors`). One Redis round trip and no SQL when Redis vouches for it;
    the event loop never waits on a socket or the database.

    A DPoP-bound token passes only with `dpop_proof` (the request's `DPoP` header), made
    for `method` and the absolute `uri` of the request that carried them; a proof given
    with a bearer token is refused, as a door refuses the DPoP scheme for one."""
    return await dpop.aauthenticate(token, dpop.Presented(token, dpop_proof is not None,
                                                          dpop_proof, method, lambda: uri))
