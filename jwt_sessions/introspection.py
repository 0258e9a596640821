"""Token introspection (RFC 7662) and revocation (RFC 7009) for other services.

Both take either kind of token and tell them apart by shape (a JWT has dots, a refresh
token is 107 base64url characters), so the optional `token_type_hint` is never needed.
Neither ever runs bcrypt: a refresh token counts only if its SHA-256 is one the row
holds, which nobody can produce without the token itself.
"""
from __future__ import annotations

from typing import Any

from django.db.models import Q

from . import access, services
from .credentials import refusal
from .exceptions import AuthenticationError
from .models import RevokeReason, Session
from .tokens import RefreshToken, parse_refresh_token

# A token of ours is a few hundred bytes; anything much longer is not one, unread.
MAX_TOKEN_LENGTH = 8192
INACTIVE: dict[str, Any] = {"active": False}


def _epoch(value: Any) -> int:
    return int(value.timestamp())


def introspect(value: str) -> dict[str, Any]:
    """RFC 7662's answer for a token: `active` and, for a live one, what it names.

    An access token is checked as a request would be (signature, then Redis and the
    database: a token revoked a moment ago in another process is inactive); a refresh
    token must be its session's current one, and the session active.
    """
    if len(value) > MAX_TOKEN_LENGTH:
        return INACTIVE
    refresh = parse_refresh_token(value)
    if refresh is not None:
        return _introspect_refresh(refresh)
    try:
        claims = access.authenticate_access(value)
    except AuthenticationError:
        return INACTIVE
    answer: dict[str, Any] = {
        "active": True, "sub": claims.user_id, "sid": str(claims.session_id),
        "jti": claims.jti, "exp": _epoch(claims.expires_at), "token_type": "access",
        "amr": list(claims.amr)}
    if claims.issued_at is not None:
        answer["iat"] = _epoch(claims.issued_at)
    if claims.auth_time is not None:
        answer["auth_time"] = _epoch(claims.auth_time)
    return _with_binding(answer, claims.dpop_jkt)


def _with_binding(answer: dict[str, Any], dpop_jkt: str | None) -> dict[str, Any]:
    """A DPoP-bound token's answer names its key (`cnf.jkt`, RFC 9449 section 6.2), so a
    resource server that introspects can check the proof itself."""
    if dpop_jkt:
        answer["cnf"] = {"jkt": dpop_jkt}
    return answer


def _introspect_refresh(token: RefreshToken) -> dict[str, Any]:
    # With its user: a refresh is refused for a user the rule refuses or whose password
    # changed (even by `QuerySet.update`, which the row never heard of), so it is not live.
    session = Session.objects.active().select_related("user").filter(
        pk=token.session_id, refresh_token_sha256=token.sha256).order_by().first()
    if session is None or refusal(session.user, session.auth_binding) is not None:
        return INACTIVE
    # The row keeps no issue time per refresh token: the last rotation is the closest.
    issued = session.rotated_at or session.created_at
    return _with_binding(
        {"active": True, "sub": str(session.user_id), "sid": str(token.session_id),
         "exp": _epoch(session.expires_at), "iat": _epoch(issued), "token_type": "refresh",
         "auth_time": _epoch(session.auth_time), "amr": session.amr}, session.dpop_jkt)


def revoke_token(value: str) -> None:
    """Revoke the session a token belongs to (reason `api`); silent for anything else.

    A live access token, or the session's current or immediately previous refresh token
    (both known to the row by SHA-256), counts; a made-up secret with a real session id
    matches nothing.
    """
    if len(value) > MAX_TOKEN_LENGTH:
        return
    refresh = parse_refresh_token(value)
    if refresh is not None:
        services.revoke_sessions(Session.objects.filter(pk=refresh.session_id).filter(
            Q(refresh_token_sha256=refresh.sha256)
            | Q(previous_refresh_token_sha256=refresh.sha256)), RevokeReason.API)
        return
    try:
        claims = access.authenticate_access(value)
    except AuthenticationError:
        return
    services.revoke_session(claims.session_id, RevokeReason.API)
