"""Who may act, and sessions bound to the user's credentials.

The user rule (`USER_AUTHENTICATION_RULE`, simplejwt's name; default: the user exists and
is active) is the one place that says which users may hold a session; every door asks it
where it loads the user. On top of it, sessions are bound to the user's credentials, as
Django binds its own sessions (`get_session_auth_hash`): each session remembers a keyed
digest of the password hash it was issued under, and is refused once the user's hash
differs, however it changed (`set_password`, `set_unusable_password`, assignment,
`QuerySet.update`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.module_loading import import_string

from . import keyed
from .conf import cached_per_settings, jwt_settings
from .models import RevokeReason

_PURPOSE = "jwt_sessions.credentials-binding"


def binding_of(password_hash: str | None) -> str:
    """The binding a session issued under this password hash carries."""
    return keyed.digest(_PURPOSE, password_hash or "")


def is_bound(binding: str, password_hash: str | None) -> bool:
    """Whether a session's binding still matches the user's password hash.

    Always true with REVOKE_ON_PASSWORD_CHANGE off, and for rows issued before
    sessions carried a binding (empty)."""
    if not jwt_settings.REVOKE_ON_PASSWORD_CHANGE or not binding:
        return True
    return keyed.matches(_PURPOSE, password_hash or "", binding)


def is_active(user: Any) -> bool:
    """Django's rule: a user model without `is_active` counts as active."""
    return getattr(user, "is_active", True) is not False


def default_user_authentication_rule(user: Any) -> bool:
    """The default user rule, simplejwt's and Django's: an existing, active user."""
    return user is not None and is_active(user)


@cached_per_settings
def _user_rule() -> Callable[[Any], bool]:
    rule = jwt_settings.USER_AUTHENTICATION_RULE
    return import_string(rule) if isinstance(rule, str) else rule


def may_act(user: Any) -> bool:
    """Whether the user rule lets this user (None: deleted) hold a session."""
    return user is not None and bool(_user_rule()(user))


def refusal(user: Any, binding: str) -> str | None:
    """Why a session bound by `binding` may not act for `user`, as the revocation
    reason (a user the rule refuses counts as deactivated); None if it may."""
    if not may_act(user):
        return RevokeReason.USER_DEACTIVATED
    if not is_bound(binding, user.password):
        return RevokeReason.PASSWORD_CHANGED
    return None
