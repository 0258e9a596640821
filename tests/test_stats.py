"""`jwt_sessions.stats`: counters that move with what happens, totalled across processes,
flushed without an extra Redis round trip on the authentication path."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from asgiref.sync import async_to_sync
from redis import Redis
from redis.client import Pipeline

from jwt_sessions import counters, stats
from jwt_sessions.access import decode_claims
from jwt_sessions.models import Session
from jwt_sessions.redis import layout
from jwt_sessions.redis.layout import HIT
from jwt_sessions.redis.mirror import SessionKeys, StoreUnavailable, circuit
from jwt_sessions.redis.store import astore, store
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def counted():
    """Measure how counters move: yields a function returning the change so far."""
    before = stats.snapshot()

    def delta() -> dict[str, int]:
        after = stats.snapshot()
        return {name: after[name] - before[name] for name in stats.COUNTERS
                if after[name] != before[name]}

    yield delta


@pytest.fixture
def redis_commands(monkeypatch):
    """Count Redis round trips: each immediate command, and each pipeline execution."""
    trips: list[str] = []
    command, execute = Redis.execute_command, Pipeline.execute

    def counting_command(self, *args, **kwargs):
        if not isinstance(self, Pipeline):
            trips.append(str(args[0]))
        return command(self, *args, **kwargs)

    def counting_execute(self, *args, **kwargs):
        if self.command_stack:
            trips.append("pipeline:" + ",".join(str(c[0][0]) for c in self.command_stack))
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(Redis, "execute_command", counting_command)
    monkeypatch.setattr(Pipeline, "execute", counting_execute)
    return trips


def test_snapshot_has_every_counter():
    assert set(stats.snapshot()) == set(stats.COUNTERS)
    assert all(isinstance(v, int) for v in stats.snapshot().values())


def test_hit_miss_and_refresh_counters(api, tokens):
    with counted() as delta:
        assert api.whoami(tokens["access"]).status_code == 200
        assert delta() == {"redis_hits": 1}
        row = Session.objects.get(pk=tokens["session_id"])  # Redis forgets the session
        store.forget([SessionKeys(row.pk, row.refresh_token_sha256, row.access_jti,
                                  row.user_id)], tombstone=False)
        assert api.whoami(tokens["access"]).status_code == 200  # miss, then rehydrated
        assert delta() == {"redis_hits": 1, "redis_misses": 1, "db_fallbacks": 1}
        api.refresh_ok(tokens["refresh"])
        assert delta()["refreshes"] == 1


def test_reuse_counter(api, tokens, jwt_settings):
    jwt_settings(REFRESH_REUSE_GRACE=0)
    api.refresh_ok(tokens["refresh"])
    with counted() as delta:
        assert_error(api.refresh(tokens["refresh"]), 401, "refresh_token_reused")
        assert delta()["reuse_detected"] == 1


def test_redis_error_counter(api, tokens, monkeypatch):
    def down(*args, **kwargs):
        raise StoreUnavailable("ConnectionError")

    with counted() as delta:
        with monkeypatch.context() as patch:
            patch.setattr(store, "check_access", down)
            assert api.whoami(tokens["access"]).status_code == 200
        circuit.reset()
        assert delta() == {"redis_errors": 1, "db_fallbacks": 1}


def test_snapshot_totals_other_processes(api, tokens):
    with counted() as delta:
        store.flush_counters({"redis_hits": 5, "refreshes": 2})  # as another worker would
        assert api.whoami(tokens["access"]).status_code == 200
        assert delta() == {"redis_hits": 6, "refreshes": 2}


def test_authenticated_request_is_one_round_trip_even_when_a_flush_is_due(
        api, tokens, redis_commands, monkeypatch, redis_conn):
    api.whoami(tokens["access"])
    stats.snapshot()  # flush what is pending, to start clean
    stats.record("refreshes", 3)
    monkeypatch.setattr(counters, "_last_flush", 0.0)  # a flush is due
    redis_commands.clear()
    assert api.whoami(tokens["access"]).status_code == 200
    assert len(redis_commands) == 1, redis_commands
    assert redis_commands[0].startswith("pipeline:") and "HINCRBY" in redis_commands[0]
    assert int(redis_conn.hget(layout.stats_key(), "refreshes")) == 3  # flushed in it

    redis_commands.clear()
    assert api.whoami(tokens["access"]).status_code == 200  # not due: a bare MGET
    assert redis_commands == ["MGET"]


# ------------------------------------------------------------------ a garbled shared hash
@pytest.fixture
def garbled(redis_conn):
    """The shared hash's `redis_hits` is no integer (someone wrote to Redis); nothing of
    this process's is pending."""
    counters.take_all()
    redis_conn.hset(layout.stats_key(), "redis_hits", "garbage")
    return redis_conn


def test_a_garbled_counter_is_reset_and_counts_again(garbled):
    assert stats.snapshot()["redis_hits"] == 0
    assert not garbled.hexists(layout.stats_key(), "redis_hits")
    stats.record("redis_hits", 2)
    assert stats.snapshot()["redis_hits"] == 2


def test_a_garbled_counter_costs_the_other_counts_of_its_flush_nothing(
        api, tokens, garbled, monkeypatch, jwt_settings):
    jwt_settings(REDIS_FAILURE_POLICY="deny")
    stats.record("refreshes", 3)
    stats.record("redis_hits")
    monkeypatch.setattr(counters, "_last_flush", 0.0)  # due: rides with the check
    assert api.whoami(tokens["access"]).status_code == 200
    assert not circuit.is_open()
    assert int(garbled.hget(layout.stats_key(), "refreshes")) == 3
    assert stats.snapshot()["refreshes"] == 3


def test_a_field_name_that_is_not_text_is_dropped_too(redis_conn):
    counters.take_all()
    redis_conn.hset(layout.stats_key(), mapping={b"\xff\xfe": 1, "refreshes": 4})
    assert stats.snapshot()["refreshes"] == 4
    assert redis_conn.hkeys(layout.stats_key()) == [b"refreshes"]


def test_the_async_face_reads_past_a_garbled_counter_and_checks_through_it(
        garbled, tokens, monkeypatch):
    claims = decode_claims(tokens["access"])
    counters.record("redis_hits")
    counters.record("refreshes")
    monkeypatch.setattr(counters, "_last_flush", 0.0)  # due: rides with the check

    async def check_and_read():
        try:
            state = await astore.check_access(claims.session_id, claims.jti)
            return state, await astore.read_counters()
        finally:
            await astore.aclose()

    state, shared = async_to_sync(check_and_read)()
    assert state == HIT
    assert shared.get("refreshes", 0) >= 1 and "redis_hits" not in shared
    assert not garbled.hexists(layout.stats_key(), "redis_hits")
