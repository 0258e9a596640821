"""A failed login costs no session work: no bcrypt, no row, no Redis key, nothing left
running after the answer. A successful login costs the password check and little else:
the new secret is hashed at a login's bcrypt cost (a few milliseconds), and the first
refresh the database decides raises that hash to BCRYPT_ROUNDS, so an ordinary login
pays no bcrypt 12 and an ordinary refresh no bcrypt at all."""
from __future__ import annotations

import threading

import pytest

from jwt_sessions.crypto import LOGIN_BCRYPT_ROUNDS
from jwt_sessions.models import Session
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def session_keys(redis_conn) -> list[bytes]:
    """Redis keys of sessions and users (a throttle's counters are not session work)."""
    return [key for key in redis_conn.keys("*") if b"jwts:{" in key]


def bcrypt_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "bcrypt" in t.name]


@pytest.fixture
def inactive(make_user):
    return make_user(is_active=False)


@pytest.mark.parametrize("who", ["unknown", "wrong_password", "inactive"])
def test_login_cost_failed_login_runs_no_bcrypt_and_leaves_nothing(
        api, user, inactive, who, bcrypt_calls, redis_conn):
    username, password = {"unknown": ("nobody", "x"), "wrong_password": (user.username, "x"),
                          "inactive": (inactive.username, None)}[who]
    for _ in range(5):
        resp = (api.login(username, password) if password else api.login(username))
        assert_error(resp, 401, "invalid_credentials")
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 0}
    assert not Session.objects.exists()
    assert session_keys(redis_conn) == []
    assert bcrypt_threads() == []


def test_login_cost_throttled_login_runs_no_bcrypt(api, user, settings, bcrypt_calls, clock):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "jwt_sessions_login": "1000/min", "jwt_sessions_login_user": "2/min"}}
    codes = [api.login(user.username, "wrong").status_code for _ in range(4)]
    assert codes[-1] == 429
    assert api.login(user.username).status_code == 429  # the right password, throttled
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 0}
    assert not Session.objects.exists()


def test_login_cost_successful_login_hashes_once_at_the_login_cost(api, user, jwt_settings,
                                                                  bcrypt_calls):
    jwt_settings(BCRYPT_ROUNDS=12)
    tokens = api.login_ok(user.username)
    stored = Session.objects.get().refresh_token_bcrypt
    assert stored.startswith(f"$2b$0{LOGIN_BCRYPT_ROUNDS}$") and len(stored) == 60
    api.refresh_ok(tokens["refresh"])  # Redis vouches: no bcrypt
    assert bcrypt_calls == {"hashpw": 1, "checkpw": 0}
    assert bcrypt_threads() == []


def test_login_cost_a_cheap_configured_cost_is_stored_as_configured(api, user, jwt_settings):
    jwt_settings(BCRYPT_ROUNDS=5)
    api.login_ok(user.username)
    assert Session.objects.get().refresh_token_bcrypt.startswith("$2b$05$")


def test_login_cost_first_database_refresh_raises_the_hash_to_the_configured_cost(
        api, user, redis_conn, jwt_settings, bcrypt_calls):
    jwt_settings(BCRYPT_ROUNDS=LOGIN_BCRYPT_ROUNDS + 1)
    tokens = api.login_ok(user.username)
    redis_conn.flushdb()
    second = api.refresh_ok(tokens["refresh"])
    stored = Session.objects.get().refresh_token_bcrypt
    assert stored.startswith(f"$2b$0{LOGIN_BCRYPT_ROUNDS + 1}$") and len(stored) == 60
    assert bcrypt_calls == {"hashpw": 2, "checkpw": 1}  # login, then check + raise
    redis_conn.flushdb()
    api.refresh_ok(second["refresh"])  # confirmed once in this process: no more bcrypt
    assert bcrypt_calls == {"hashpw": 2, "checkpw": 1}
    assert Session.objects.get().refresh_token_bcrypt == stored


def test_login_cost_stored_bcrypt_is_checked_where_the_secret_is_not_yet_confirmed(
        api, user, redis_conn, monkeypatch, bcrypt_calls):
    """Another process (no confirmation in memory) checks the stored bcrypt: a row whose
    bcrypt belongs to another secret refuses the token."""
    from jwt_sessions import refresh

    current = {}
    for name in ("mine", "other"):
        tokens = api.login_ok(user.username)
        redis_conn.flushdb()
        current[name] = api.refresh_ok(tokens["refresh"])
    other_bcrypt = Session.objects.get(pk=current["other"]["session_id"]).refresh_token_bcrypt
    monkeypatch.setattr(refresh, "_bcrypt_confirmed", type(refresh._bcrypt_confirmed)())
    redis_conn.flushdb()
    checked = bcrypt_calls["checkpw"]
    mine = api.refresh_ok(current["mine"]["refresh"])  # its own bcrypt: confirmed
    assert bcrypt_calls["checkpw"] == checked + 1
    Session.objects.filter(pk=mine["session_id"]).update(refresh_token_bcrypt=other_bcrypt)
    monkeypatch.setattr(refresh, "_bcrypt_confirmed", type(refresh._bcrypt_confirmed)())
    redis_conn.flushdb()
    assert_error(api.refresh(mine["refresh"]), 401, "refresh_token_invalid")


def test_login_cost_failing_claims_hook_leaves_no_row_and_logs_why(api, user, jwt_settings,
                                                                   redis_conn, caplog):
    jwt_settings(CLAIMS_HOOK=lambda user, session_id: {"sub": "someone-else"})
    with caplog.at_level("ERROR", logger="jwt_sessions"):
        resp = api.login(user.username)
    assert resp.status_code == 500
    assert resp.json()["code"] == "claims_hook_failed"
    assert not Session.objects.exists()
    assert session_keys(redis_conn) == []
    assert any("CLAIMS_HOOK" in r.getMessage() and "sub" in r.getMessage()
               for r in caplog.records)


def test_login_cost_raising_claims_hook_leaves_no_row_and_logs_why(api, user, jwt_settings,
                                                                   caplog):
    def hook(user, session_id):
        raise LookupError("no roles table")

    jwt_settings(CLAIMS_HOOK=hook)
    with caplog.at_level("ERROR", logger="jwt_sessions"):
        resp = api.login(user.username)
    assert resp.status_code == 500 and resp.json()["code"] == "claims_hook_failed"
    assert "no roles table" not in resp.content.decode()  # the log says why, not the body
    assert not Session.objects.exists()
    assert any(r.exc_info and "no roles table" in str(r.exc_info[1]) for r in caplog.records)


def test_login_cost_failing_claims_hook_on_refresh_leaves_the_session_unrotated(
        api, user, jwt_settings):
    tokens = api.login_ok(user.username)
    before = Session.objects.get()
    jwt_settings(CLAIMS_HOOK=lambda user, session_id: {"exp": 0})
    resp = api.refresh(tokens["refresh"])
    assert resp.status_code == 500 and resp.json()["code"] == "claims_hook_failed"
    after = Session.objects.get()
    assert (after.refresh_token_sha256, after.access_jti) == (before.refresh_token_sha256,
                                                              before.access_jti)
    jwt_settings(CLAIMS_HOOK=None)
    api.refresh_ok(tokens["refresh"])  # the same token still works once the hook is fixed
