"""GET sessions/ and DELETE sessions/<id>/: a user's own active sessions."""
import uuid
from datetime import datetime, timedelta

import pytest
from freezegun import freeze_time

from tests.conftest import UA_IPHONE, assert_error

pytestmark = pytest.mark.django_db

FIELDS = {"id", "created_at", "last_activity_at", "expires_at", "ip_address", "location",
          "user_agent", "browser", "os", "device", "device_type", "auth_time", "amr",
          "dpop_bound", "current"}


def test_session_list_shows_fields_and_marks_the_current_one(api, user):
    phone = api.login_ok(user.username, ua=UA_IPHONE, ip="192.0.2.44")
    laptop = api.login_ok(user.username)
    resp = api.sessions(phone["access"])
    assert resp.status_code == 200
    rows = {row["id"]: row for row in resp.json()}
    assert set(rows) == {phone["session_id"], laptop["session_id"]}
    mine = rows[phone["session_id"]]
    assert set(mine) == FIELDS
    assert mine["current"] is True and rows[laptop["session_id"]]["current"] is False
    assert (mine["device_type"], mine["os"], mine["device"]) == ("mobile", "iOS", "iPhone")
    assert mine["ip_address"] == "192.0.2.44" and mine["user_agent"] == UA_IPHONE
    assert mine["location"] is None
    for name in ("created_at", "last_activity_at", "expires_at"):
        assert datetime.fromisoformat(mine[name]).tzinfo is not None


def test_session_list_never_shows_secrets(api, tokens):
    row = api.sessions(tokens["access"]).json()[0]
    assert not {"refresh_token_bcrypt", "refresh_token_sha256", "access_jti"} & set(row)


def test_session_list_shows_only_active_sessions(api, user, redis_conn):
    current = api.login_ok(user.username)
    revoked = api.login_ok(user.username)
    api.logout(revoked["access"])
    with freeze_time(timedelta(days=-40), tick=True):
        api.login_ok(user.username)  # its 30-day expiry is long past now
    ids = [row["id"] for row in api.sessions(current["access"]).json()]
    assert ids == [current["session_id"]]


def test_session_list_shows_only_the_callers_sessions(api, user, make_user):
    mine = api.login_ok(user.username)
    api.login_ok(make_user().username)
    assert [row["id"] for row in api.sessions(mine["access"]).json()] == [mine["session_id"]]


def test_session_list_is_most_recently_active_first(api, user):
    with freeze_time(timedelta(hours=-2), tick=True):
        oldest = api.login_ok(user.username)
    with freeze_time(timedelta(hours=-1), tick=True):
        middle = api.login_ok(user.username)
    newest = api.login_ok(user.username)
    refreshed = api.refresh_ok(oldest["refresh"])  # activity now: comes first
    ids = [row["id"] for row in api.sessions(newest["access"]).json()]
    assert ids == [refreshed["session_id"], newest["session_id"], middle["session_id"]]


def test_delete_own_session_revokes_it_and_spares_the_others(api, user):
    current, other, third = (api.login_ok(user.username) for _ in range(3))
    resp = api.delete_session(current["access"], other["session_id"])
    assert resp.status_code == 204
    assert_error(api.whoami(other["access"]), 401, "session_revoked")
    assert_error(api.refresh(other["refresh"]), 401, "session_revoked")
    assert api.whoami(current["access"]).status_code == 200
    assert api.whoami(third["access"]).status_code == 200
    assert other["session_id"] not in {r["id"] for r in api.sessions(current["access"]).json()}


def test_delete_current_session_logs_out(api, tokens):
    assert api.delete_session(tokens["access"], tokens["session_id"]).status_code == 204
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


def test_delete_another_users_session_is_404_and_leaves_it_alive(api, tokens, make_user):
    victim = api.login_ok(make_user().username)
    assert_error(api.delete_session(tokens["access"], victim["session_id"]), 404, "not_found")
    assert api.whoami(victim["access"]).status_code == 200


@pytest.mark.parametrize("session_id", [
    str(uuid.uuid4()), "not-a-uuid", "1", "%00", "x" * 300, uuid.uuid4().hex,
])
def test_delete_unknown_or_malformed_session_is_404(api, tokens, session_id):
    assert_error(api.delete_session(tokens["access"], session_id), 404, "not_found")
    assert api.whoami(tokens["access"]).status_code == 200


def test_delete_already_revoked_session_is_404(api, user):
    current, other = api.login_ok(user.username), api.login_ok(user.username)
    api.delete_session(current["access"], other["session_id"])
    assert_error(api.delete_session(current["access"], other["session_id"]), 404, "not_found")


def test_sessions_endpoints_need_a_token(api, tokens):
    assert_error(api.client.get("/auth/sessions/"), 401, "not_authenticated")
    resp = api.client.delete(f"/auth/sessions/{tokens['session_id']}/")
    assert_error(resp, 401, "not_authenticated")
    assert api.whoami(tokens["access"]).status_code == 200
