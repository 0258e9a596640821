"""POST logout/ and logout-all/: tokens are refused from the moment the call returns."""
import pytest

from jwt_sessions.models import Session
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_sessions(api, user):
    return [api.login_ok(user.username) for _ in range(3)]


def test_logout_refuses_the_sessions_tokens_at_once(api, tokens):
    assert api.logout(tokens["access"]).status_code == 204
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")
    session = Session.objects.get()
    assert session.revoked_at is not None and session.revoked_reason == "logout"


def test_logout_is_refused_after_redis_flush_too(api, tokens, redis_conn):
    api.logout(tokens["access"])
    redis_conn.flushdb()
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


def test_logout_leaves_the_users_other_sessions_alone(api, three_sessions):
    first, *others = three_sessions
    api.logout(first["access"])
    for other in others:
        assert api.whoami(other["access"]).status_code == 200
        assert api.refresh(other["refresh"]).status_code == 200


def test_logout_twice_is_session_revoked(api, tokens):
    api.logout(tokens["access"])
    assert_error(api.logout(tokens["access"]), 401, "session_revoked")


def test_logout_without_token_is_not_authenticated(api):
    assert_error(api.post("/auth/logout/"), 401, "not_authenticated")


def test_logout_all_refuses_every_session_of_the_user(api, three_sessions):
    assert api.logout_all(three_sessions[0]["access"]).status_code == 204
    for data in three_sessions:
        assert_error(api.whoami(data["access"]), 401, "session_revoked")
        assert_error(api.refresh(data["refresh"]), 401, "session_revoked")
    assert set(Session.objects.values_list("revoked_reason", flat=True)) == {"logout_all"}


def test_logout_all_keep_current_keeps_only_the_calling_session(api, three_sessions):
    current, *others = three_sessions
    resp = api.logout_all(current["access"], {"keep_current": True})
    assert resp.status_code == 204
    assert api.whoami(current["access"]).status_code == 200
    assert api.refresh(current["refresh"]).status_code == 200
    for data in others:
        assert_error(api.whoami(data["access"]), 401, "session_revoked")


def test_logout_all_keep_current_false_revokes_the_caller_too(api, three_sessions):
    api.logout_all(three_sessions[0]["access"], {"keep_current": False})
    assert_error(api.whoami(three_sessions[0]["access"]), 401, "session_revoked")


def test_logout_all_leaves_other_users_alone(api, three_sessions, make_user):
    other = api.login_ok(make_user().username)
    api.logout_all(three_sessions[0]["access"])
    assert api.whoami(other["access"]).status_code == 200
