"""Who may hold a session: one rule, replaceable once (`USER_AUTHENTICATION_RULE`,
simplejwt's name; default: the user exists and is active), that every door asks where it
loads the user. A session's binding to the user's password hash (refused once the hash
differs, however it changed) is in `jwt_sessions.crypto`; `refusal` asks both. Beside
django-allauth, a login by password alone also asks allauth's rules
(`password_login_refusal`)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.utils.module_loading import import_string
from rest_framework.exceptions import APIException

from .conf import cached_per_settings, jwt_settings
from .crypto import is_bound
from .models import RevokeReason


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


def password_login_refusal(user: Any) -> APIException | None:
    """Why a correct password alone must not open a session for `user`: with
    django-allauth's accounts installed, what allauth's own login would still ask (a
    second factor, a verified email, a login code). None if the password is enough."""
    if not apps.is_installed("allauth.account"):
        return None
    from .allauth.login_rules import password_login_refusal as allauth_refusal

    return allauth_refusal(user)
