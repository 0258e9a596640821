"""Redis can refuse, never grant: a party that can write Redis can at worst keep an access
token it already holds alive until that token's own `exp`. It cannot get a token for
another user, stretch a session past the row's limits, or refresh an ended session."""
from __future__ import annotations

from datetime import timedelta

import pytest

from jwt_sessions.models import Session
from jwt_sessions.redis import layout
from jwt_sessions.redis.store import store
from jwt_sessions.tokens import decode_access_token, parse_refresh_token
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def session_key_of(refresh: str) -> str:
    token = parse_refresh_token(refresh)
    return layout.session_key(token.session_id, token.sha256)


def rewrite_value(redis_conn, refresh: str, user_id=None, end: str | None = None) -> None:
    """What a Redis writer does: rewrite the session value, keeping its TTL."""
    key = session_key_of(refresh)
    jti, user, old_end = redis_conn.get(key).decode().split("|")
    redis_conn.set(key, f"{jti}|{user if user_id is None else user_id}|"
                        f"{old_end if end is None else end}", keepttl=True)


def test_rewritten_user_in_redis_does_not_change_whose_token_refresh_mints(
        api, make_user, redis_conn):
    victim = make_user(is_staff=True, is_superuser=True)
    attacker = make_user()
    tokens = api.login_ok(attacker.username)
    rewrite_value(redis_conn, tokens["refresh"], user_id=victim.pk)

    resp = api.refresh(tokens["refresh"])
    if resp.status_code == 200:
        claims = decode_access_token(resp.json()["access"])
        assert claims.user_id == str(attacker.pk)
        assert api.me(resp.json()["access"]).json()["id"] == attacker.pk
    else:  # refusing is fine too; granting the victim is not
        assert resp.status_code == 401


def test_rewritten_end_in_redis_cannot_stretch_session_max_lifetime(
        api, user, redis_conn, jwt_settings, clock):
    jwt_settings(SESSION_MAX_LIFETIME=timedelta(hours=1))
    tokens = api.login_ok(user.username)
    cap = Session.objects.get(pk=tokens["session_id"]).absolute_expires_at
    rewrite_value(redis_conn, tokens["refresh"], end="-")

    body = api.refresh_ok(tokens["refresh"])
    session = Session.objects.get(pk=tokens["session_id"])
    assert session.expires_at <= cap
    assert decode_access_token(body["access"]).expires_at <= cap

    clock.tick(timedelta(hours=1, seconds=1))
    rewrite_value(redis_conn, body["refresh"], end="-")
    assert api.refresh(body["refresh"]).status_code == 401


def test_redis_vouching_for_a_revoked_session_does_not_refresh_it(api, tokens, redis_conn):
    key = session_key_of(tokens["refresh"])
    value, ttl = redis_conn.get(key), redis_conn.pttl(key)
    assert api.logout(tokens["access"]).status_code == 204
    redis_conn.flushdb()  # the writer restores the key and removes the tombstone
    redis_conn.set(key, value, px=ttl)
    assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")


def test_user_id_with_separator_survives_the_redis_value(redis_conn):
    """A string primary key may hold "|": the value still parses to the right parts."""
    import uuid

    from jwt_sessions.redis.mirror import SessionKeys

    keys = SessionKeys(uuid.uuid4(), "a" * 64, "jti-1", "team|admin")
    store.put_session(keys, 1_900_000_000, refresh_ttl=timedelta(days=1),
                      access_ttl=timedelta(minutes=1))
    cached = store.rotate(keys.session_id, keys.refresh_sha256, "b" * 64, "jti-2",
                          timedelta(days=1), timedelta(minutes=1))
    assert (cached.access_jti, cached.user_id, cached.absolute_end) == (
        "jti-1", "team|admin", 1_900_000_000)
