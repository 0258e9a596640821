"""What allauth's flows do to the jwt_sessions session its login opened: a logout ends
it, a reauthentication renews its `auth_time` and `amr`, and a password change that
keeps the allauth session signed in keeps it too (as Django's `update_session_auth_hash`
keeps the current login)."""
from __future__ import annotations

from typing import Any

from allauth.account.signals import authentication_step_completed, password_changed, password_set
from django.contrib.auth.signals import user_logged_out

from .. import services
from ..models import RevokeReason
from . import links
from .methods import amr_of


def _linked(request: Any) -> Any:
    session = getattr(request, "session", None)
    return links.linked_session_id(session) if session is not None else None


def _logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    session_id = _linked(request)
    if session_id is not None:
        services.revoke_session(session_id, RevokeReason.LOGOUT)


def _step_completed(sender: Any, request: Any = None, user: Any = None, method: str = "",
                    **extra: Any) -> None:
    if not extra.get("reauthenticated"):
        return  # a login's steps: its session is opened once the login completes
    session_id = _linked(request)
    if session_id is not None:
        links.renew_authentication(session_id, user, amr_of([{"method": method, **extra}]))


def _password_changed(sender: Any, request: Any = None, user: Any = None,
                      **kwargs: Any) -> None:
    session_id = _linked(request)
    if session_id is not None:
        services.update_session_auth(user, session_id)


def connect() -> None:
    user_logged_out.connect(_logged_out, dispatch_uid="jwt_sessions.allauth.logout")
    authentication_step_completed.connect(
        _step_completed, dispatch_uid="jwt_sessions.allauth.reauthentication")
    for signal in (password_changed, password_set):
        signal.connect(_password_changed, dispatch_uid="jwt_sessions.allauth.password")
