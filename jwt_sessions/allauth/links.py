"""Which jwt_sessions session an allauth (Django) session opened.

allauth keeps the state of its flows (pending MFA, reauthentication, WebAuthn
challenges) in a Django session, named to app clients by its session token. The login
that a headless flow completes writes the id of the jwt_sessions session it opened
there, so that allauth's logout and reauthentication reach that session, and so that a
jwt_sessions session that has ended (revoked in the admin or the device list, or
expired) ends the allauth session too.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from ..models import Session

SESSION_KEY = "jwt_sessions_session_id"


def link(django_session: Any, session_id: uuid.UUID) -> None:
    django_session[SESSION_KEY] = str(session_id)


def linked_session_id(django_session: Any) -> uuid.UUID | None:
    """The id of the jwt_sessions session this Django session opened, if any."""
    value = django_session.get(SESSION_KEY)
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def is_live(session_id: uuid.UUID, user_id: Any) -> bool:
    """The jwt_sessions session is active and still its user's."""
    return Session.objects.active().filter(pk=session_id, user_id=user_id).exists()


def renew_authentication(session_id: uuid.UUID, user: Any, amr: Iterable[str]) -> bool:
    """The session's user has just proved who they are again: `auth_time` becomes now
    and `amr` the methods of that proof. The next token the session signs (allauth's
    `tokens/refresh`) carries both. False if the session is no longer active."""
    return bool(Session.objects.active().filter(pk=session_id, user_id=user.pk).update(
        auth_time=timezone.now(), amr=list(amr)))
