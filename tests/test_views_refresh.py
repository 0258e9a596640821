"""POST refresh/: rotation, bcrypt only off the hot path, revoked sessions."""
from datetime import datetime, timedelta

import bcrypt
import pytest
from freezegun import freeze_time

from jwt_sessions.models import Session
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def checkpw_calls(monkeypatch):
    """Every bcrypt.checkpw call, still performed for real; bcrypt.hashpw must not run."""
    calls = []
    real = bcrypt.checkpw

    def spy(password, hashed):
        calls.append(hashed)
        return real(password, hashed)

    def no_hashing(*args):
        raise AssertionError("a refresh must not bcrypt-hash anything")

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    monkeypatch.setattr(bcrypt, "hashpw", no_hashing)
    return calls


def test_refresh_returns_a_new_pair_for_the_same_session(api, user, tokens):
    resp = api.refresh(tokens["refresh"])
    assert resp.status_code == 200
    new = resp.json()
    assert set(new) == set(tokens)
    assert new["session_id"] == tokens["session_id"]
    assert new["refresh"] != tokens["refresh"] and new["access"] != tokens["access"]
    assert datetime.fromisoformat(new["refresh_expires_at"]).tzinfo is not None
    assert api.whoami(new["access"]).json() == {"id": user.pk}
    assert Session.objects.count() == 1


def test_refresh_with_redis_hit_does_not_run_bcrypt(api, tokens, checkpw_calls):
    api.refresh_ok(api.refresh_ok(tokens["refresh"])["refresh"])
    assert checkpw_calls == []


def test_refresh_after_redis_flush_verifies_bcrypt_once(api, tokens, redis_conn, bcrypt_calls):
    redis_conn.flushdb()
    new = api.refresh_ok(tokens["refresh"])  # the login's hash already has the configured cost
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 1}
    api.refresh_ok(new["refresh"])  # rehydrated: back on the fast path
    redis_conn.flushdb()
    api.refresh_ok(api.refresh_ok(new["refresh"])["refresh"])  # confirmed already
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 1}


def test_refresh_token_bcrypt_is_a_bcrypt_hash_with_configured_cost(api, user, jwt_settings):
    jwt_settings(BCRYPT_ROUNDS=5)
    api.login_ok(user.username)
    stored = Session.objects.get().refresh_token_bcrypt
    assert stored.startswith("$2b$05$") and len(stored) == 60


def test_refresh_rotation_keeps_one_live_refresh_token(api, tokens, jwt_settings):
    jwt_settings(REFRESH_REUSE_GRACE=0)
    new = api.refresh_ok(tokens["refresh"])
    assert_error(api.refresh(tokens["refresh"]), 401, "refresh_token_reused")
    assert_error(api.refresh(new["refresh"]), 401, "session_revoked")
    assert_error(api.whoami(new["access"]), 401, "session_revoked")


def test_refresh_renews_the_idle_expiry(api, tokens):
    with freeze_time(timedelta(days=1), tick=True):
        new = api.refresh_ok(tokens["refresh"])
    assert new["refresh_expires_at"] > tokens["refresh_expires_at"]
    assert datetime.fromisoformat(new["refresh_expires_at"]) == Session.objects.get().expires_at


def test_refresh_after_idle_lifetime_is_refresh_token_invalid(api, tokens, redis_conn):
    with freeze_time(timedelta(days=31), tick=True):
        redis_conn.flushdb()  # Redis would have expired the key by then
        assert_error(api.refresh(tokens["refresh"]), 401, "refresh_token_invalid")


def test_refresh_of_revoked_session_is_session_revoked(api, tokens):
    assert api.logout(tokens["access"]).status_code == 204
    assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")


def test_refresh_of_revoked_session_is_refused_even_if_redis_still_vouches(
        api, tokens, redis_conn):
    keys_before = {k: redis_conn.dump(k) for k in redis_conn.scan_iter()}
    Session.objects.update(revoked_at=Session.objects.get().created_at, revoked_reason="admin")
    for key, value in keys_before.items():  # Redis still holds the live session
        redis_conn.restore(key, 0, value, replace=True)
    assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")


def test_without_rotation_the_same_refresh_token_keeps_working(api, user, jwt_settings):
    jwt_settings(ROTATE_REFRESH_TOKENS=False)
    first = api.login_ok(user.username)
    second = api.refresh_ok(first["refresh"])
    assert second["refresh"] == first["refresh"]
    third = api.refresh_ok(first["refresh"])
    assert_error(api.whoami(second["access"]), 401, "token_invalid")
    assert api.whoami(third["access"]).status_code == 200


def test_refresh_token_of_another_session_cannot_be_forged_from_its_id(api, user):
    """Same session id, wrong secret: bcrypt refuses it (no session is touched)."""
    import base64

    data = api.login_ok(user.username)
    raw = bytearray(base64.urlsafe_b64decode(data["refresh"] + "="))
    raw[20] ^= 0xFF  # flip a byte of the session secret
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert_error(api.refresh(forged), 401, "refresh_token_invalid")
    assert api.refresh(data["refresh"]).status_code == 200


def test_session_max_lifetime_caps_expiry_and_no_refresh_extends_it(api, user, jwt_settings,
                                                                   redis_conn):
    jwt_settings(SESSION_MAX_LIFETIME=timedelta(days=2))
    data = api.login_ok(user.username)
    end = datetime.fromisoformat(data["refresh_expires_at"])
    assert timedelta(days=2, seconds=-1) < end - Session.objects.get().created_at <= timedelta(
        days=2)
    with freeze_time(timedelta(days=1), tick=True):
        data = api.refresh_ok(data["refresh"])  # Redis path
    assert datetime.fromisoformat(data["refresh_expires_at"]) == end
    redis_conn.flushdb()
    with freeze_time(timedelta(days=1, hours=1), tick=True):
        data = api.refresh_ok(data["refresh"])  # database path
    assert datetime.fromisoformat(data["refresh_expires_at"]) == end
    assert Session.objects.get().expires_at == end
    with freeze_time(timedelta(days=2, seconds=1), tick=True):
        assert_error(api.refresh(data["refresh"]), 401, "refresh_token_invalid")
