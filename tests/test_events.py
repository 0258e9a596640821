"""Revocation events: every revocation and rotation is published in its own round trip,
and the receiver hands it to every consumer of this process."""
from __future__ import annotations

import threading
import uuid

import pytest
from django.contrib.auth.models import User

from jwt_sessions import services
from jwt_sessions.models import RevokeReason, Session
from jwt_sessions.redis import events, layout
from jwt_sessions.redis.mirror import SessionKeys
from jwt_sessions.redis.store import store
from jwt_sessions.tokens import decode_access_token, parse_refresh_token
from tests.conftest import assert_error, url
from tests.event_consumers import Heard, is_event

pytestmark = pytest.mark.django_db(transaction=True)


def jti_of(access: str) -> str:
    return decode_access_token(access).jti


# ------------------------------------------------------------------ every revocation
def test_logout_publishes_revoked(api, tokens, heard):
    assert api.logout(tokens["access"]).status_code == 204
    heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))


def test_logout_all_publishes_every_session(api, user, heard):
    sessions = [api.login_ok(user.username) for _ in range(3)]
    assert api.logout_all(sessions[0]["access"]).status_code == 204
    for pair in sessions:
        heard.wait_for(is_event(events.REVOKED, pair["session_id"]))


def test_deleting_a_device_publishes_revoked(api, user, heard):
    mine, other = api.login_ok(user.username), api.login_ok(user.username)
    assert api.delete_session(mine["access"], other["session_id"]).status_code == 204
    heard.wait_for(is_event(events.REVOKED, other["session_id"]))
    assert heard.about(mine["session_id"]) == []


@pytest.mark.parametrize("reason", list(RevokeReason))
def test_every_reason_publishes_revoked(tokens, reason, heard):
    services.revoke_sessions(Session.objects.filter(pk=tokens["session_id"]), reason)
    heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))


def test_password_change_publishes_revoked(tokens, user, heard):
    user.set_password("another-Pa55word")
    user.save()
    heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))


def test_deactivation_publishes_revoked(tokens, user, heard):
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
    user.save()
    heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))


def test_reuse_detected_publishes_revoked(api, tokens, heard, jwt_settings):
    jwt_settings(REFRESH_REUSE_GRACE=0)
    assert events.wait_until_healthy(5)  # the settings change renewed the subscription
    api.refresh_ok(tokens["refresh"])
    assert_error(api.refresh(tokens["refresh"]), 401, "refresh_token_reused")
    heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))


def test_max_sessions_publishes_revoked(api, user, heard, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1)
    assert events.wait_until_healthy(5)
    first = api.login_ok(user.username)
    api.login_ok(user.username)
    heard.wait_for(is_event(events.REVOKED, first["session_id"]))


# ------------------------------------------------------------------ every rotation
def test_refresh_publishes_the_superseded_jti(api, tokens, heard):
    api.refresh_ok(tokens["refresh"])  # Redis hit: the rotation script publishes
    heard.wait_for(is_event(events.ROTATED, tokens["session_id"], jti_of(tokens["access"])))


def test_database_path_refresh_publishes_the_superseded_jti(api, tokens, heard, redis_conn):
    redis_conn.flushdb()  # Redis lost everything: the database rotates, then re-caches
    api.refresh_ok(tokens["refresh"])
    heard.wait_for(is_event(events.ROTATED, tokens["session_id"], jti_of(tokens["access"])))


def test_refresh_without_rotation_still_supersedes_the_access_token(api, tokens, heard,
                                                                   jwt_settings):
    jwt_settings(ROTATE_REFRESH_TOKENS=False)
    assert events.wait_until_healthy(5)
    api.refresh_ok(tokens["refresh"])
    heard.wait_for(is_event(events.ROTATED, tokens["session_id"], jti_of(tokens["access"])))


# ------------------------------------------------------------------ same round trip
def keys_of_tokens(tokens, user) -> SessionKeys:
    refresh = parse_refresh_token(tokens["refresh"])
    return SessionKeys(refresh.session_id, refresh.sha256, jti_of(tokens["access"]), user.pk)


def test_revocation_and_its_event_share_one_round_trip(tokens, user, heard, round_trips):
    keys = keys_of_tokens(tokens, user)
    store.forget([keys])  # warm: scripts loaded, connection open
    round_trips[0] = 0
    store.forget([keys])
    assert round_trips[0] == 1
    assert len(heard.wait_for(is_event(events.REVOKED, tokens["session_id"]), count=2)) == 2


def test_rotation_and_its_event_share_one_round_trip(api, tokens, heard, round_trips):
    from datetime import timedelta

    from jwt_sessions.tokens import make_refresh_token

    old = parse_refresh_token(tokens["refresh"])
    new = make_refresh_token(old.session_id, old.secret)
    store.check_access(old.session_id, "warm-up")
    round_trips[0] = 0
    assert store.rotate(old.session_id, old.sha256, new.sha256, "new-jti",
                        timedelta(days=1), timedelta(minutes=5)) is not None
    assert round_trips[0] <= 2  # EVALSHA (plus one SCRIPT LOAD the first time)
    heard.wait_for(is_event(events.ROTATED, old.session_id, jti_of(tokens["access"])))


def test_logout_all_of_many_sessions_is_one_round_trip_with_batched_messages(
        user, heard, round_trips):
    keys = [SessionKeys(uuid.uuid4(), "ab" * 32, f"jti{i}", user.pk) for i in range(2500)]
    store.forget(keys[:1])
    round_trips[0] = 0
    store.forget(keys)
    assert round_trips[0] == 1
    heard.wait_for(is_event(events.REVOKED, keys[-1].session_id))
    revoked = {e.session_id for e in heard.events if e.kind == events.REVOKED}
    assert {k.session_id for k in keys} <= revoked


# ------------------------------------------------------------------ the receiver
def test_channel_is_under_the_key_prefix(jwt_settings):
    jwt_settings(REDIS_KEY_PREFIX="myapp:")
    assert layout.events_channel() == "myapp:ev"
    assert layout.heartbeat_channel("r1") == "myapp:hb:r1"


def test_garbled_messages_are_ignored(tokens, user, heard, redis_conn):
    for garbage in (b"", b"X", b"R" + b"\x00" * 5, b"O" + b"\x01" * 16 + b"\x09abc"):
        redis_conn.publish(layout.events_channel(), garbage)
    store.forget([keys_of_tokens(tokens, user)])
    heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))
    assert events.healthy()


def test_a_failing_consumer_does_not_starve_the_others(tokens, user, heard):
    def broken(event):
        raise RuntimeError("boom")

    unsubscribe = events.subscribe(broken)
    try:
        store.forget([keys_of_tokens(tokens, user)])
        heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))
    finally:
        unsubscribe()


def test_unsubscribed_consumers_hear_nothing(tokens, user, heard):
    other = Heard()
    events.subscribe(other)()  # subscribe, then unsubscribe at once
    store.forget([keys_of_tokens(tokens, user)])
    heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))
    assert other.events == []


def test_stop_ends_the_thread_and_subscribe_restarts_it(heard):
    events.stop()
    assert not any(t.name == "jwt_sessions-events" for t in threading.enumerate())
    assert not events._receiver
    assert events.wait_until_healthy(5)  # a consumer is registered: started lazily again


def test_a_settings_change_reports_a_gap(heard, jwt_settings):
    jwt_settings(REDIS_KEY_PREFIX="other:")
    heard.wait_for(is_event(events.GAP))
    assert events.wait_until_healthy(5)


def test_revoked_session_still_refused_after_events(api, tokens, heard):
    assert api.logout(tokens["access"]).status_code == 204
    heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    assert api.client.get(url("jwks")).status_code == 200
