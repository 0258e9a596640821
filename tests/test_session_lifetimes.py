"""Session lifetimes: an idle limit renewed by refresh, an absolute cap
that no rotation extends, and the non-rotating mode."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from jwt_sessions.models import Session
from jwt_sessions.redis import layout
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = timedelta(hours=1)


def expiry(data: dict) -> datetime:
    return datetime.fromisoformat(data["refresh_expires_at"])


def test_refresh_lifetime_is_an_idle_limit_renewed_by_refresh(api, user, jwt_settings, clock):
    jwt_settings(REFRESH_TOKEN_LIFETIME=timedelta(days=1))
    data = api.login_ok(user.username)
    login_at = datetime.fromisoformat(data["access_expires_at"]) - timedelta(minutes=15)
    for _ in range(3):  # three days in all, never idle for a whole day
        clock.tick(20 * HOUR)
        data = api.refresh_ok(data["refresh"])
    assert expiry(data) - login_at >= timedelta(days=3)  # renewed each time
    clock.tick(24 * HOUR + timedelta(seconds=1))  # idle for longer than the lifetime
    assert_error(api.refresh(data["refresh"]), 401, "refresh_token_invalid")


def test_idle_session_expires(api, tokens, jwt_settings, clock):
    clock.tick(timedelta(days=30, seconds=1))
    assert_error(api.refresh(tokens["refresh"]), 401, "refresh_token_invalid")


def test_session_max_lifetime_is_never_extended(api, user, jwt_settings, clock, redis_conn):
    jwt_settings(REFRESH_TOKEN_LIFETIME=timedelta(days=1),
                 SESSION_MAX_LIFETIME=timedelta(days=2))
    data = api.login_ok(user.username)
    session = Session.objects.get(pk=data["session_id"])
    cap = session.absolute_expires_at
    assert abs(cap - (session.created_at + timedelta(days=2))) < timedelta(seconds=1)
    clock.tick(20 * HOUR)
    data = api.refresh_ok(data["refresh"])
    assert expiry(data) - session.created_at == 44 * HOUR  # idle limit, below the cap
    clock.tick(20 * HOUR)
    data = api.refresh_ok(data["refresh"])
    assert expiry(data) == cap  # renewal stops at the cap
    clock.tick(7 * HOUR)
    redis_conn.flushdb()  # the database path obeys the cap as well
    data = api.refresh_ok(data["refresh"])
    assert expiry(data) == cap
    assert Session.objects.get(pk=data["session_id"]).expires_at == cap
    clock.tick(HOUR)  # 48 h since login: over, however active the session was
    assert_error(api.refresh(data["refresh"]), 401, "refresh_token_invalid")


def test_session_max_lifetime_ends_the_fast_path_too(api, user, jwt_settings, clock):
    jwt_settings(SESSION_MAX_LIFETIME=timedelta(hours=2), REFRESH_TOKEN_LIFETIME=HOUR)
    data = api.login_ok(user.username)
    for _ in range(3):
        clock.tick(timedelta(minutes=35))
        data = api.refresh_ok(data["refresh"])
    clock.tick(timedelta(minutes=16))  # 2 h 1 min since login, 16 min since last refresh
    assert_error(api.refresh(data["refresh"]), 401, "refresh_token_invalid")


def test_without_rotation_the_same_refresh_token_is_returned(api, user, jwt_settings, clock):
    jwt_settings(ROTATE_REFRESH_TOKENS=False, REFRESH_TOKEN_LIFETIME=timedelta(days=1))
    data = api.login_ok(user.username)
    previous = data
    for _ in range(3):  # 60 h in all: only a renewed idle limit keeps the session alive
        clock.tick(20 * HOUR)
        fresh = api.refresh_ok(data["refresh"])  # the same token every time: not reuse
        assert fresh["refresh"] == data["refresh"]
        assert expiry(fresh) - expiry(previous) == 20 * HOUR
        assert api.whoami(fresh["access"]).status_code == 200
        previous = fresh
    superseded = api.refresh_ok(data["refresh"])
    assert_error(api.whoami(previous["access"]), 401, "token_invalid")
    assert api.whoami(superseded["access"]).status_code == 200
    assert Session.objects.get(pk=data["session_id"]).revoked_at is None


@pytest.mark.parametrize("path", ["login", "redis refresh", "database refresh"])
def test_no_access_token_outlives_its_session(api, user, jwt_settings, redis_conn, path):
    """With SESSION_MAX_LIFETIME shorter than an access lifetime, the access token (its
    exp claim and its Redis key) ends with the session, on every path that issues one."""
    from tests import jwt_forge as forge

    jwt_settings(SESSION_MAX_LIFETIME=timedelta(minutes=5))
    data = api.login_ok(user.username)
    if path != "login":
        if path == "database refresh":
            redis_conn.flushdb()
        data = api.refresh_ok(data["refresh"])
    session = Session.objects.get(pk=data["session_id"])
    claims = forge.parts(data["access"])[1]
    assert claims["exp"] <= session.expires_at.timestamp()
    assert datetime.fromisoformat(data["access_expires_at"]) <= session.expires_at
    ttl_ms = redis_conn.pttl(layout.access_key(session.pk, claims["jti"]))
    assert 0 < ttl_ms <= 5 * 60 * 1000
