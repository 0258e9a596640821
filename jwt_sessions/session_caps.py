"""A cap on a user's concurrent sessions (`MAX_SESSIONS_PER_USER`) and what a login over
it does (`MAX_SESSIONS_POLICY`): "evict" the least recently active sessions, or "refuse"
the login.

Race-free because the login calls `sessions_over_cap` inside the transaction that
holds the user's row locked (`SELECT ... FOR UPDATE`) until the new session is
committed: concurrent logins of one user count and insert one after the other (SQLite
serialises every write transaction anyway).
"""
from __future__ import annotations

import uuid
from typing import Any

from django.db import models

from .conf import jwt_settings
from .exceptions import MaxSessionsReached
from .models import RevokeReason, Session


class SessionCapPolicy(models.TextChoices):
    EVICT = "evict"
    REFUSE = "refuse"


# Response headers of the device list: the cap and its policy, so that a client can say
# "you can be signed in on 5 devices; a new sign-in ends the oldest".
LIMIT_HEADER = "Session-Limit"
POLICY_HEADER = "Session-Limit-Policy"


def sessions_over_cap(user: Any) -> list[uuid.UUID]:
    """The sessions of `user` to end so that one more fits under the cap, least recently
    active first; MaxSessionsReached (403 `max_sessions`) instead under the "refuse"
    policy. Call with the user's row locked."""
    limit = jwt_settings.MAX_SESSIONS_PER_USER
    if not limit:
        return []
    active = Session.objects.active().for_user(user).order_by("last_activity_at", "created_at")
    surplus = active.count() - limit + 1
    if surplus <= 0:
        return []
    if jwt_settings.MAX_SESSIONS_POLICY == SessionCapPolicy.REFUSE:
        raise MaxSessionsReached()
    return list(active.values_list("pk", flat=True)[:surplus])


def evict(session_ids: list[uuid.UUID]) -> None:
    """End the sessions `sessions_over_cap` named. The login's last step: their
    tombstones reach Redis at once, which no rollback of a login that failed later
    would undo."""
    from .services import revoke_sessions  # services calls us: imported late, no cycle

    if session_ids:
        revoke_sessions(Session.objects.filter(pk__in=session_ids), RevokeReason.MAX_SESSIONS)


def cap_headers() -> dict[str, str]:
    """The headers that tell a client the cap and its policy; none without a cap."""
    limit = jwt_settings.MAX_SESSIONS_PER_USER
    if not limit:
        return {}
    return {LIMIT_HEADER: str(limit), POLICY_HEADER: str(jwt_settings.MAX_SESSIONS_POLICY)}
