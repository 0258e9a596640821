"""Would django-allauth let this user in with a password alone?

jwt_sessions' own `login/` checks a password and nothing else. Beside allauth, that
door must not skip what allauth's login asks once the password is right: an emailed
login code when `ACCOUNT_LOGIN_BY_CODE_REQUIRED` covers password logins, a verified
email address when `ACCOUNT_EMAIL_VERIFICATION` is mandatory, and the second factor of
a user with an MFA authenticator (TOTP or a security key/passkey, as allauth's own MFA
stage asks). Such a user is sent to allauth's login, which asks for the rest.
"""
from __future__ import annotations

from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.utils import has_verified_email
from django.apps import apps
from django.utils.translation import gettext_lazy as _

from ..exceptions import AuthenticationError


class PasswordAloneRefused(AuthenticationError):
    """The password was right, but allauth asks more of this user's login. Raised only
    after the password is checked: a wrong one stays `invalid_credentials`."""


class LoginCodeRequired(PasswordAloneRefused):
    default_detail = _("This account signs in with a code sent by email: use the login "
                       "that asks for it.")
    default_code = "login_code_required"


class EmailUnverified(PasswordAloneRefused):
    default_detail = _("Verify your email address first: use the login that asks for it.")
    default_code = "email_unverified"


class MFARequired(PasswordAloneRefused):
    default_detail = _("This account has two-factor authentication: use the login that "
                       "asks for the second factor.")
    default_code = "mfa_required"


def password_login_refusal(user: Any) -> PasswordAloneRefused | None:
    """Why allauth would not let `user` in on a correct password alone (in the order
    of allauth's login stages); None if it would."""
    if _login_code_required():
        return LoginCodeRequired()
    if _email_verification_mandatory() and not has_verified_email(user):
        return EmailUnverified()
    if _mfa_enabled(user):
        return MFARequired()
    return None


def _login_code_required() -> bool:
    required = account_settings.LOGIN_BY_CODE_REQUIRED
    return required is True or (isinstance(required, set) and "password" in required)


def _email_verification_mandatory() -> bool:
    mandatory = account_settings.EmailVerificationMethod.MANDATORY
    return bool(account_settings.EMAIL_VERIFICATION == mandatory)


def _mfa_enabled(user: Any) -> bool:
    """allauth's own test (its adapter's, which a project may override), for the types
    its login asks for: recovery codes alone are no second factor to ask."""
    if not apps.is_installed("allauth.mfa"):
        return False
    from allauth.mfa.models import Authenticator
    from allauth.mfa.utils import is_mfa_enabled

    return is_mfa_enabled(user, [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN])
