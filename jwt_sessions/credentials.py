"""Sessions bound to the user's credentials, as Django binds its own sessions
(`get_session_auth_hash`): each session remembers a keyed digest of the password hash it
was issued under, and a refresh is refused once the user's hash differs, however it
changed (`set_password`, `set_unusable_password`, assignment, `QuerySet.update`), or once
the user is no longer active, however deactivated."""
from __future__ import annotations

from typing import Any

from . import keyed
from .conf import jwt_settings

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
