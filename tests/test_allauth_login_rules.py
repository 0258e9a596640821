"""jwt_sessions' own `login/` beside django-allauth: a correct password alone opens a
session only for a user whom allauth's login too would let in on it (no second factor,
no email verification, no login code still to ask). A wrong password stays
`invalid_credentials`: only the holder of the password learns what else is asked."""
from __future__ import annotations

import pytest

pytest.importorskip("allauth.mfa")

from allauth.account.models import EmailAddress  # noqa: E402
from allauth.mfa.models import Authenticator  # noqa: E402
from django.contrib.auth.signals import user_logged_in  # noqa: E402
from django.utils import translation  # noqa: E402

from jwt_sessions import api as jwt_api  # noqa: E402
from jwt_sessions.models import Session  # noqa: E402
from tests.allauth_client import Headless, activate_totp, totp_code  # noqa: E402
from tests.conftest import assert_error, bearer, next_ip, url  # noqa: E402

pytestmark = pytest.mark.django_db


def with_mfa(user, kind: str) -> None:
    if kind == "totp":
        activate_totp(user)
    else:
        Authenticator.objects.create(user=user, type=kind, data={})


# ------------------------------------------------------------------ a second factor
@pytest.mark.parametrize("kind", [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN])
def test_a_user_with_mfa_is_sent_to_the_login_that_asks_for_it(api, user, kind):
    with_mfa(user, kind)
    body = assert_error(api.login(user.username), 401, "mfa_required")
    assert "second factor" in body["detail"]
    assert not Session.objects.exists()


def test_the_refusal_speaks_the_active_language(api, user):
    activate_totp(user)
    with translation.override("de"):
        body = assert_error(api.login(user.username), 401, "mfa_required")
    assert "zweiten Faktor" in body["detail"]


def test_a_wrong_password_of_a_user_with_mfa_is_just_invalid_credentials(api, user):
    activate_totp(user)
    body = assert_error(api.login(user.username, password="wrong"), 401,
                        "invalid_credentials")
    assert "factor" not in body["detail"]


def test_recovery_codes_alone_ask_nothing_more_as_at_allauth(api, user):
    Authenticator.objects.create(user=user, type=Authenticator.Type.RECOVERY_CODES, data={})
    assert Headless().login(user.username).status_code == 200
    api.login_ok(user.username)


def test_the_refusal_sends_no_user_logged_in(api, user):
    activate_totp(user)
    seen = []
    user_logged_in.connect(receiver := lambda **kw: seen.append(kw["user"]), weak=False)
    try:
        assert_error(api.login(user.username), 401, "mfa_required")
    finally:
        user_logged_in.disconnect(receiver)
    assert seen == []


def test_a_refused_correct_password_keeps_its_throttle_slot(api, user, settings):
    """Counted as a failed login: the door answers no more password guesses for a
    user with MFA than for any other."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_login_user": "2/min"}}
    activate_totp(user)
    for _ in range(2):
        assert_error(api.login(user.username), 401, "mfa_required")
    assert_error(api.login(user.username), 429, "throttled")


def test_the_python_api_is_the_projects_own_check(user):
    """`api.issue_tokens` opens what the project decided to open, after its own checks."""
    activate_totp(user)
    assert jwt_api.issue_tokens(user, amr=["pwd", "otp", "mfa"])["access"]


def test_a_password_reauthentication_of_an_mfa_session_claims_only_the_password(api, user):
    """Our `reauthenticate/` opens no session: it renews one that allauth's login opened
    with both factors, as allauth's own password reauthentication does, and `amr` then
    says only `pwd` (a view that needs `otp` asks for the code again)."""
    secret = activate_totp(user)
    app = Headless()
    assert app.login(user.username).status_code == 401
    assert app.mfa_authenticate(totp_code(secret)).status_code == 200
    assert Session.objects.get().amr == ["pwd", "otp", "mfa"]
    resp = api.post(url("reauthenticate"), {"password": "Pa55word-for-tests"},
                    **bearer(app.access), REMOTE_ADDR=next_ip())
    assert resp.status_code == 200, resp.content
    assert Session.objects.get().amr == ["pwd"]


# ------------------------------------------------------------------ email verification
def test_mandatory_email_verification_refuses_an_unverified_user(api, make_user, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    user = make_user(email="new@example.com")
    EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    assert Headless().login(user.username).status_code == 401  # allauth asks to verify
    assert_error(api.login(user.username), 401, "email_unverified")
    assert_error(api.login(user.username, password="wrong"), 401, "invalid_credentials")
    assert not Session.objects.exists()


def test_mandatory_email_verification_lets_a_verified_user_in(api, make_user, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    user = make_user(email="known@example.com")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    api.login_ok(user.username)


def test_optional_email_verification_asks_nothing(api, make_user, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    user = make_user(email="new@example.com")
    EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    api.login_ok(user.username)


# ------------------------------------------------------------------ login codes
@pytest.mark.parametrize("required", [True, ["password"], ["password", "mfa"]])
def test_a_required_login_code_refuses_the_password_alone(api, user, settings, required):
    settings.ACCOUNT_LOGIN_BY_CODE_REQUIRED = required
    assert_error(api.login(user.username), 401, "login_code_required")
    assert not Session.objects.exists()


def test_a_login_code_required_only_after_other_methods_asks_nothing(api, user, settings):
    settings.ACCOUNT_LOGIN_BY_CODE_REQUIRED = ["socialaccount"]
    api.login_ok(user.username)
