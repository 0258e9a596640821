"""The token pair of a session: what login and refresh answer, signed from the
session's row (never from what Redis said)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .models import Session
from .tokens import RefreshToken, encode_access_token


@dataclass(frozen=True)
class TokenPair:
    """What login and refresh answer."""

    access: str
    refresh: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    session_id: uuid.UUID
    user_id: str
    token_type: str = "Bearer"  # "DPoP" for a session bound to a DPoP key

    def as_dict(self) -> dict[str, str]:
        """The JSON body login and refresh answer (the shape `TokenPairSerializer`
        describes, built without a serializer's per-call field copies)."""
        return {"access": self.access, "refresh": self.refresh,
                "access_expires_at": self.access_expires_at.isoformat(),
                "refresh_expires_at": self.refresh_expires_at.isoformat(),
                "session_id": str(self.session_id), "token_type": self.token_type}


# How the user proved who they are (RFC 8176 method names), for the `amr` claim.
AMR_PASSWORD = "pwd"


def capped_end(idle_end: datetime, absolute_end: datetime | None) -> datetime:
    return idle_end if absolute_end is None else min(idle_end, absolute_end)


def token_pair(session: Session, refresh: RefreshToken, now: datetime,
               extra: dict[str, Any]) -> TokenPair:
    """The token pair of a session's current row: its access token is signed from the
    row (user, session end, auth_time, amr), never from what Redis said; `extra` is what
    CLAIMS_HOOK gave (`claims.extra_claims`), asked before the row changed."""
    access, access_expires = encode_access_token(
        session.user_id, session.pk, session.access_jti, now, session.expires_at,
        auth_time=session.auth_time, amr=session.amr, extra=extra,
        dpop_jkt=session.dpop_jkt or None)
    return TokenPair(access, refresh.value, access_expires, session.expires_at, session.pk,
                     str(session.user_id), "DPoP" if session.dpop_jkt else "Bearer")
