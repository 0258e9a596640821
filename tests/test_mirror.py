"""jwt_sessions.redis.mirror, the door of the Redis wing: the circuit breaker (a dead
Redis costs one failure per retry interval), the replay of revocations before Redis is
trusted again, and the counters the store takes and gives back itself."""
from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync

from jwt_sessions import counters, services
from jwt_sessions.models import Session
from jwt_sessions.redis import layout, mirror
from jwt_sessions.redis.client import clients
from jwt_sessions.redis.mirror import MISS, StoreUnavailable, circuit
from jwt_sessions.redis.store import astore, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def unreachable(monkeypatch):
    """Redis refuses every connection from now on; returns the attempts made."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append("connect")
        raise ConnectionRefusedError("no Redis here")

    monkeypatch.setattr(clients, "sync", refuse)
    monkeypatch.setattr(clients, "for_this_loop", refuse)
    return attempts


def test_a_failure_opens_the_circuit_and_later_calls_skip_redis(unreachable):
    with pytest.raises(StoreUnavailable):
        mirror.check_access(uuid.uuid4(), "jti")
    assert circuit.is_open() and circuit.needs_replay
    for _ in range(3):
        with pytest.raises(StoreUnavailable, match="circuit open"):
            mirror.check_access(uuid.uuid4(), "jti")
    assert unreachable == ["connect"]  # one attempt per retry interval, not per call


def test_the_async_check_shares_the_circuit(unreachable):
    with pytest.raises(StoreUnavailable):
        async_to_sync(mirror.acheck_access)(uuid.uuid4(), "jti")
    assert circuit.is_open()
    with pytest.raises(StoreUnavailable, match="circuit open"):
        mirror.check_access(uuid.uuid4(), "jti")
    assert unreachable == ["connect"]


@pytest.mark.parametrize("face", ["sync", "async"])
def test_counters_whose_flush_failed_are_kept_for_the_next_one(unreachable, monkeypatch,
                                                               face):
    counters.take_all()
    counters.record("refreshes", 2)
    monkeypatch.setattr(counters, "_last_flush", 0.0)
    with pytest.raises(StoreUnavailable):
        if face == "sync":
            store.check_access(uuid.uuid4(), "jti")
        else:
            async_to_sync(astore.check_access)(uuid.uuid4(), "jti")
    assert counters.take_all() == {"refreshes": 2}


def test_due_counters_ride_with_the_check_and_reach_the_shared_hash(monkeypatch):
    counters.take_all()
    before = store.read_counters().get("reuse_detected", 0)
    counters.record("reuse_detected")
    monkeypatch.setattr(counters, "_last_flush", 0.0)
    assert mirror.check_access(uuid.uuid4(), "jti") == MISS
    assert store.read_counters()["reuse_detected"] == before + 1
    assert counters.take_all() == {}


def test_a_revocation_made_while_redis_was_down_is_replayed_before_it_is_trusted(
        api, user, monkeypatch):
    tokens = api.login_ok(user.username)
    session_id = uuid.UUID(tokens["session_id"])
    real_sync = clients.sync
    monkeypatch.setattr(clients, "sync", lambda: (_ for _ in ()).throw(ConnectionError()))
    assert services.revoke_session(session_id)  # the database only: Redis is down
    assert circuit.needs_replay
    monkeypatch.setattr(clients, "sync", real_sync)
    circuit.down_until = 0.0  # the retry interval has passed
    assert not real_sync().exists(layout.tombstone_key(session_id))
    assert mirror.check_access(session_id, "any-jti") == mirror.REVOKED  # replayed first
    assert not circuit.needs_replay
    assert Session.objects.get(pk=session_id).revoked_at is not None


def test_the_policy_deny_turns_an_unanswered_check_into_a_503(jwt_settings):
    from jwt_sessions.exceptions import ServiceUnavailable

    mirror.apply_failure_policy()  # "database": go on without Redis
    jwt_settings(REDIS_FAILURE_POLICY="deny")
    with pytest.raises(ServiceUnavailable):
        mirror.apply_failure_policy()
