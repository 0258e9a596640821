"""Who may hold a session: Django's rule for an active user. A session's binding to the
user's password hash (refused once the hash differs, however it changed) is in
`jwt_sessions.crypto`."""
from __future__ import annotations

from typing import Any


def is_active(user: Any) -> bool:
    """Django's rule: a user model without `is_active` counts as active."""
    return getattr(user, "is_active", True) is not False
