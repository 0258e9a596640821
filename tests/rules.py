"""A project's own user rule, for the tests: only staff may act (and only active ones)."""
from jwt_sessions.credentials import default_user_authentication_rule


def staff_only(user) -> bool:
    return default_user_authentication_rule(user) and user.is_staff
