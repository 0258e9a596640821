"""The event types this deployment speaks (CAEP 1.0, RISC, SSF), and the subjects that
name a user and a session in them (RFC 9493 subject identifiers)."""
from __future__ import annotations

from typing import Any

from ..models import RevokeReason
from . import settings as ssf

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
CREDENTIAL_CHANGE = CAEP + "credential-change"
ACCOUNT_DISABLED = RISC + "account-disabled"
ACCOUNT_PURGED = RISC + "account-purged"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"

# What a stream can ask for (verification is always delivered when asked for).
EVENTS_SUPPORTED = [SESSION_REVOKED, CREDENTIAL_CHANGE]
# What the receiver acts on: each ends the named session, or every session of the user.
EVENTS_RECEIVED = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_PURGED]

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"

# Who ended the session, in CAEP's words.
_INITIATOR: dict[str, str] = {
    RevokeReason.LOGOUT: "user", RevokeReason.LOGOUT_ALL: "user", RevokeReason.USER: "user",
    RevokeReason.PASSWORD_CHANGED: "user", RevokeReason.ADMIN: "admin",
    RevokeReason.USER_DEACTIVATED: "admin", RevokeReason.REUSE_DETECTED: "policy",
    RevokeReason.MAX_SESSIONS: "policy",
}


def user_subject(user_id: Any) -> dict[str, str]:
    return {"format": "iss_sub", "iss": ssf.issuer(), "sub": str(user_id)}


def session_subject(user_id: Any, session_id: Any) -> dict[str, Any]:
    """The user and one of their sessions (a `complex` subject)."""
    return {"format": "complex", "user": user_subject(user_id),
            "session": {"format": "opaque", "id": str(session_id)}}


def session_revoked(reason: str, timestamp: int) -> dict[str, Any]:
    """The CAEP payload of a revocation: when, who started it, and why (for people)."""
    label = str(RevokeReason(reason).label) if reason in RevokeReason.values else reason
    return {"event_timestamp": timestamp,
            "initiating_entity": _INITIATOR.get(reason, "system"),
            "reason_admin": {"en": label}}


def credential_change(timestamp: int) -> dict[str, Any]:
    return {"event_timestamp": timestamp, "credential_type": "password",
            "change_type": "update"}
