"""Revocation triggers: password change, deactivation, deletion and the
per-user session limit. Each takes effect at once and records its reason."""
from __future__ import annotations

import pytest

from jwt_sessions.models import Session
from tests.conftest import PASSWORD, assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def reason(data: dict) -> str:
    return Session.objects.get(pk=data["session_id"]).revoked_reason


def assert_dead(api, data: dict, refresh_code: str = "session_revoked") -> None:
    """Both tokens of a session are refused, even right after Redis vouched for them."""
    assert_error(api.whoami(data["access"]), 401, "session_revoked")
    assert_error(api.refresh(data["refresh"]), 401, refresh_code)


@pytest.fixture
def two_sessions(api, user) -> list[dict]:
    sessions = [api.login_ok(user.username) for _ in range(2)]
    for data in sessions:  # warm: Redis vouches for each
        assert api.whoami(data["access"]).status_code == 200
    return sessions


def test_password_change_revokes_every_session(api, user, two_sessions):
    user.set_password("a-new-password-123")
    user.save()
    for data in two_sessions:
        assert_dead(api, data)
        assert reason(data) == "password_changed"
    assert api.login(user.username, password="a-new-password-123").status_code == 200


def test_password_change_with_update_fields(api, user, two_sessions):
    user.set_password("a-new-password-123")
    user.save(update_fields=["password"])
    for data in two_sessions:
        assert_dead(api, data)


def test_password_change_keeps_sessions_when_disabled(api, user, two_sessions, jwt_settings):
    jwt_settings(REVOKE_ON_PASSWORD_CHANGE=False)
    user.set_password("a-new-password-123")
    user.save()
    for data in two_sessions:
        assert api.whoami(data["access"]).status_code == 200
        api.refresh_ok(data["refresh"])


def test_saving_other_fields_keeps_sessions(api, user, two_sessions):
    user.first_name = "Ada"
    user.save()
    user.set_password("not-saved-1234")  # changed in memory, but not written below
    user.save(update_fields=["first_name"])
    for data in two_sessions:
        assert api.whoami(data["access"]).status_code == 200
    assert api.login(user.username, password=PASSWORD).status_code == 200


def test_deactivated_user_is_refused_at_once(api, user, two_sessions):
    user.is_active = False
    user.save()
    for data in two_sessions:
        assert_dead(api, data)
        assert reason(data) == "user_deactivated"


def test_deleted_user_is_refused_at_once(api, user, two_sessions):
    user.delete()
    assert not Session.objects.exists()
    for data in two_sessions:
        assert_error(api.whoami(data["access"]), 401, "session_revoked")
        assert_error(api.refresh(data["refresh"]), 401, "refresh_token_invalid")


def test_max_sessions_revokes_the_least_recently_active(api, user, jwt_settings, clock):
    jwt_settings(MAX_SESSIONS_PER_USER=2)
    first = api.login_ok(user.username)
    clock.tick(60)
    second = api.login_ok(user.username)
    clock.tick(60)
    first = api.refresh_ok(first["refresh"])  # now the first login is the more active one
    clock.tick(60)
    third = api.login_ok(user.username)  # the new login wins
    assert_dead(api, second)
    assert reason(second) == "max_sessions"
    ended = Session.objects.filter(revoked_reason="max_sessions")
    assert [str(session.pk) for session in ended] == [second["session_id"]]
    for data in (first, third):
        assert api.whoami(data["access"]).status_code == 200
    assert Session.objects.active().filter(user=user).count() == 2


def test_max_sessions_does_not_touch_other_users(api, make_user, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1)
    alice, bob = make_user(), make_user()
    alices = api.login_ok(alice.username)
    api.login_ok(bob.username)
    api.login_ok(bob.username)
    assert api.whoami(alices["access"]).status_code == 200
