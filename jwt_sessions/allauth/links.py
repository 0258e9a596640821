"""Which jwt_sessions session an allauth (Django) session opened.

allauth keeps the state of its flows (pending MFA, reauthentication, WebAuthn
challenges) in a Django session, named to app clients by its session token. The login
that a headless flow completes writes the id of the jwt_sessions session it opened
there, so that allauth's logout and reauthentication reach that session, and so that a
jwt_sessions session that has ended (revoked in the admin or the device list, or
expired) ends the allauth session too.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.utils import timezone

from ..conf import jwt_settings
from ..models import Session

logger = logging.getLogger("jwt_sessions")

SESSION_KEY = "jwt_sessions_session_id"


def link(django_session: Any, session_id: uuid.UUID) -> None:
    """Note the jwt_sessions session in the Django session, and (best effort, in the
    cache) the Django session under the jwt_sessions session's id, so that an access
    token can stand for the session token on allauth's endpoints."""
    django_session[SESSION_KEY] = str(session_id)
    if django_session.session_key is None:
        django_session.save()
    try:
        caches[jwt_settings.CACHE_ALIAS].set(_cache_key(session_id), django_session.session_key,
                                             timeout=settings.SESSION_COOKIE_AGE)
    except Exception:  # noqa: BLE001 - the session token still works without it
        logger.warning("Could not note the allauth session of session %s", session_id)


def session_key_for(session_id: uuid.UUID) -> str | None:
    """The key of the Django session that opened this jwt_sessions session, if the cache
    still knows it. The cache can only point: the caller checks the Django session's own
    link before trusting it."""
    try:
        key = caches[jwt_settings.CACHE_ALIAS].get(_cache_key(session_id))
    except Exception:  # noqa: BLE001 - then only the session token finds the session
        logger.warning("Could not look up the allauth session of session %s", session_id)
        return None
    return key if isinstance(key, str) else None


def _cache_key(session_id: uuid.UUID) -> str:
    return f"{jwt_settings.REDIS_KEY_PREFIX}allauth:{session_id}"


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
