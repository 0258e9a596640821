"""Sessions are bound to the user's credentials: however the password hash changes and
however the user is deactivated, refresh is refused from then on; a save that changes
them ends the sessions at once (test_services.py: `update_session_auth` keeps one)."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from jwt_sessions import api as jwt_api
from jwt_sessions.models import Session
from tests.conftest import PASSWORD, assert_error

pytestmark = pytest.mark.django_db

User = get_user_model()


def reason(tokens: dict) -> str:
    return Session.objects.get(pk=tokens["session_id"]).revoked_reason


def assert_refresh_refused(api, tokens: dict, why: str) -> None:
    assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")
    assert reason(tokens) == why


def assert_ended_at_once(api, tokens: dict, why: str) -> None:
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    assert_refresh_refused(api, tokens, why)


@pytest.fixture
def outdated_hash_user(make_user, settings):
    """A user whose stored hash Django considers outdated (another hasher)."""
    settings.PASSWORD_HASHERS = [*settings.PASSWORD_HASHERS,
                                 "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user = make_user()
    User.objects.filter(pk=user.pk).update(
        password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    return User.objects.get(pk=user.pk)


def test_queryset_update_of_password_refuses_refresh(api, user, tokens):
    User.objects.filter(pk=user.pk).update(password=make_password("another-pass-1"))
    assert_refresh_refused(api, tokens, "password_changed")


def test_queryset_update_of_password_refuses_refresh_on_the_fast_path(api, user, tokens):
    fresh = api.refresh_ok(tokens["refresh"])  # Redis vouches for the new token
    User.objects.filter(pk=user.pk).update(password=make_password("another-pass-1"))
    assert_refresh_refused(api, fresh, "password_changed")


def test_queryset_deactivation_refuses_refresh(api, user, tokens):
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_refresh_refused(api, tokens, "user_deactivated")


@pytest.mark.parametrize("outdated", [False, True], ids=["current_hash", "outdated_hash"])
def test_set_unusable_password_ends_sessions(api, user, outdated, outdated_hash_user):
    target = outdated_hash_user if outdated else user
    tokens = jwt_api.issue_tokens(target)  # no login: the stored hash stays as it is
    target.set_unusable_password()
    target.save()
    assert_ended_at_once(api, tokens, "password_changed")


def test_assigned_hash_on_an_outdated_hash_is_a_change_not_an_upgrade(
        api, outdated_hash_user):
    tokens = jwt_api.issue_tokens(outdated_hash_user)  # no login: the hash stays outdated
    outdated_hash_user.password = make_password("a-brand-new-pass-1")
    outdated_hash_user.save()
    assert_ended_at_once(api, tokens, "password_changed")


def test_set_password_on_a_user_loaded_without_its_password(api, user, tokens):
    partial = User.objects.only("id", "username").get(pk=user.pk)
    partial.set_password("a-brand-new-pass-1")
    partial.save()
    assert_ended_at_once(api, tokens, "password_changed")


def test_hash_upgrade_at_login_keeps_other_sessions(api, outdated_hash_user):
    earlier = jwt_api.issue_tokens(outdated_hash_user)  # bound to the outdated hash
    later = api.login_ok(outdated_hash_user.username)  # this login upgrades the hash
    assert User.objects.get(pk=outdated_hash_user.pk).password.startswith("md5$")
    for tokens in (earlier, later):
        assert api.whoami(tokens["access"]).status_code == 200
        api.refresh_ok(tokens["refresh"])


def test_saving_an_unchanged_partial_user_keeps_sessions(api, user, tokens):
    partial = User.objects.only("id", "username").get(pk=user.pk)
    partial.first_name = "Ada"
    partial.save()
    assert_refresh_ok = api.refresh_ok(tokens["refresh"])
    assert assert_refresh_ok["session_id"] == tokens["session_id"]


def test_binding_is_off_with_revoke_on_password_change_false(api, user, tokens, jwt_settings):
    jwt_settings(REVOKE_ON_PASSWORD_CHANGE=False)
    User.objects.filter(pk=user.pk).update(password=make_password("another-pass-1"))
    api.refresh_ok(tokens["refresh"])
