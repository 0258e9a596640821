"""`api.aauthenticate`: the access check from async code, with the sync path's answers.

One Redis round trip and no SQL on a hit, a revoked session refused from Redis alone, the
database fallback (and its bound) on a miss or an outage, the failure policy, the circuit;
and the event loop keeps running while Redis is slow.
"""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from redis.asyncio.client import Pipeline, Redis

from jwt_sessions import api as jwt_api
from jwt_sessions.exceptions import (
    ServiceUnavailable,
    SessionRevoked,
    TokenExpired,
    TokenInvalid,
)
from jwt_sessions.redis import layout
from jwt_sessions.redis.mirror import circuit
from jwt_sessions.redis.store import astore
from jwt_sessions.tokens import decode_access_token
from tests.jwt_forge import hmac_sign, parts
from tests.polling import eventually
from tests.redis_servers import TcpProxy, forget_redis_pools, point_cache_at, start_redis

pytestmark = pytest.mark.django_db(transaction=True)


def check(*tokens: str) -> list:
    """aauthenticate each token in one event loop: its claims, or the exception raised."""
    async def run():
        results = []
        try:
            for token in tokens:
                try:
                    results.append(await jwt_api.aauthenticate(token))
                except Exception as exc:  # noqa: BLE001 - the answer under test
                    results.append(exc)
        finally:
            await astore.aclose()
        return results

    return async_to_sync(run)()


@pytest.fixture
def async_round_trips(monkeypatch):
    """Count asyncio Redis round trips: immediate commands and pipeline executions."""
    trips: list[str] = []
    command, execute = Redis.execute_command, Pipeline.execute

    async def counting_command(self, *args, **kwargs):
        if not isinstance(self, Pipeline):
            trips.append(str(args[0]))
        return await command(self, *args, **kwargs)

    async def counting_execute(self, *args, **kwargs):
        if self.command_stack:
            trips.append("pipeline:" + ",".join(str(c[0][0]) for c in self.command_stack))
        return await execute(self, *args, **kwargs)

    monkeypatch.setattr(Redis, "execute_command", counting_command)
    monkeypatch.setattr(Pipeline, "execute", counting_execute)
    return trips


def test_hit_is_one_round_trip_and_no_sql(tokens, queries, async_round_trips, monkeypatch):
    from jwt_sessions import counters

    monkeypatch.setattr(counters, "_last_flush", time.monotonic())  # no counters due
    with queries() as captured:
        [claims] = check(tokens["access"])
    assert claims == decode_access_token(tokens["access"])
    assert async_round_trips == ["MGET"]
    assert len(captured) == 0, [q["sql"] for q in captured]


def test_due_counters_ride_in_the_same_round_trip(tokens, async_round_trips, monkeypatch):
    from jwt_sessions import counters

    counters.record("refreshes")
    monkeypatch.setattr(counters, "_last_flush", 0.0)
    check(tokens["access"])
    assert len(async_round_trips) == 1
    assert async_round_trips[0].startswith("pipeline:MGET,HINCRBY")


def test_the_sync_and_async_clients_see_the_same_redis(api, tokens, redis_conn):
    """The embedded stand-in too: the async client talks to the sync one's fake server."""
    assert api.logout(tokens["access"]).status_code == 204
    [result] = check(tokens["access"])
    assert isinstance(result, SessionRevoked)


def test_revoked_session_costs_no_sql(api, tokens, queries):
    assert api.logout(tokens["access"]).status_code == 204
    with queries() as captured:
        results = check(*[tokens["access"]] * 5)
    assert all(isinstance(r, SessionRevoked) for r in results), results
    assert "session_revoked" == results[0].get_codes()["code"]
    assert len(captured) == 0


def test_miss_falls_back_to_the_database_and_rehydrates(tokens, redis_conn, queries):
    redis_conn.flushdb()
    with queries() as fallback:
        [first] = check(tokens["access"])
    assert first == decode_access_token(tokens["access"])
    assert len(fallback) >= 1
    with queries() as after:
        check(tokens["access"])
    assert len(after) == 0, "Redis was not rehydrated"


def test_database_refuses_what_redis_forgot_was_revoked(api, tokens, redis_conn):
    assert api.logout(tokens["access"]).status_code == 204
    redis_conn.flushdb()
    [result] = check(tokens["access"])
    assert isinstance(result, SessionRevoked)


def test_superseded_access_token_is_invalid(api, tokens):
    api.refresh_ok(tokens["refresh"])
    [result] = check(tokens["access"])
    assert isinstance(result, TokenInvalid)


@pytest.mark.parametrize("token, error", [
    ("", TokenInvalid), ("garbage", TokenInvalid), ("a.b.c", TokenInvalid),
    ("x" * 100_000, TokenInvalid),
])
def test_bad_tokens_get_the_sync_codes(token, error, queries):
    with queries() as captured:
        [result] = check(token)
    assert type(result) is error
    assert len(captured) == 0


def test_expired_and_forged_tokens(tokens, clock):
    forged = hmac_sign(*parts(tokens["access"]), key="not-the-key-" + "k" * 40)
    clock.tick(3600)
    expired, bad = check(tokens["access"], forged)
    assert isinstance(expired, TokenExpired)
    assert isinstance(bad, TokenInvalid)


# ------------------------------------------------------------------ Redis down
@pytest.fixture
def dead_redis(settings, jwt_settings):
    point_cache_at(settings, "redis://127.0.0.1:1/0")  # nothing listens there
    jwt_settings(REDIS_RETRY_INTERVAL=60)
    yield
    forget_redis_pools()


def test_dead_redis_policy_database_answers_from_the_database(user, dead_redis):
    from jwt_sessions.services import issue_tokens

    pair = issue_tokens(user)
    [claims] = check(pair.access)
    assert claims.session_id == pair.session_id
    assert circuit.is_open()


def test_dead_redis_policy_deny_is_503(user, dead_redis, jwt_settings):
    from jwt_sessions.services import issue_tokens

    pair = issue_tokens(user)
    jwt_settings(REDIS_FAILURE_POLICY="deny", REDIS_RETRY_INTERVAL=60)
    [result] = check(pair.access)
    assert isinstance(result, ServiceUnavailable)
    assert result.get_codes()["code"] == "service_unavailable"


def test_open_circuit_skips_redis(user, dead_redis, async_round_trips):
    from jwt_sessions.services import issue_tokens

    pair = issue_tokens(user)
    check(pair.access)
    async_round_trips.clear()
    started = time.monotonic()
    check(pair.access, pair.access)
    assert async_round_trips == []
    assert time.monotonic() - started < 1


def test_fallback_keeps_the_bound(user, dead_redis, jwt_settings):
    from jwt_sessions.services import issue_tokens

    pair = issue_tokens(user)
    jwt_settings(MAX_CONCURRENT_DB_FALLBACKS=0, REDIS_RETRY_INTERVAL=60)
    [result] = check(pair.access)
    assert isinstance(result, ServiceUnavailable)


def test_revocation_made_during_an_outage_is_replayed_before_async_trusts_redis(
        settings, jwt_settings, user, api):
    server = start_redis()
    proxy = TcpProxy(server.port)
    try:
        point_cache_at(settings, proxy.url())
        jwt_settings(REDIS_RETRY_INTERVAL=0.2)
        tokens = api.login_ok(user.username)
        proxy.cut("refuse")
        assert api.logout(tokens["access"]).status_code == 204  # Redis never heard of it
        proxy.restore()
        assert circuit.is_open()  # the logout found Redis down
        eventually(lambda: not circuit.is_open(), 2, "the retry interval to pass")
        [result] = check(tokens["access"])
        assert isinstance(result, SessionRevoked)
        session_id = decode_access_token(tokens["access"]).session_id
        assert server.client().exists(layout.tombstone_key(session_id))
    finally:
        forget_redis_pools()
        proxy.close()
        server.close()


# ------------------------------------------------------------------ the loop keeps running
def test_slow_redis_does_not_block_the_event_loop(settings, jwt_settings, user, api):
    """Ten checks against a Redis 0.3 s away overlap: the loop serves others meanwhile."""
    server = start_redis()
    proxy = TcpProxy(server.port)
    try:
        point_cache_at(settings, proxy.url(), timeout=2)
        tokens = api.login_ok(user.username)
        proxy.latency = 0.3

        async def run():
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            beat = asyncio.create_task(ticker())
            started = time.monotonic()
            try:
                results = await asyncio.gather(
                    *[jwt_api.aauthenticate(tokens["access"]) for _ in range(10)])
            finally:
                beat.cancel()
                await astore.aclose()
            return results, time.monotonic() - started, ticks

        results, took, ticks = async_to_sync(run)()
        assert len(results) == 10
        assert took < 2.0, f"the checks ran one after another ({took:.2f} s)"
        assert ticks >= 10, f"the loop was blocked ({ticks} ticks in {took:.2f} s)"
    finally:
        forget_redis_pools()
        proxy.close()
        server.close()


# ------------------------------------------------------------------ LOCAL_CACHE
def test_local_cache_answers_repeat_async_checks_without_redis(api, tokens, jwt_settings,
                                                                async_round_trips):
    from jwt_sessions import events
    from jwt_sessions.redis import local_cache

    jwt_settings(LOCAL_CACHE={"max_age": timedelta(seconds=30), "max_entries": 100})
    assert local_cache.current() is not None
    assert events.wait_until_healthy(5)
    check(tokens["access"])  # Redis vouches; the token is kept
    async_round_trips.clear()
    [claims] = check(tokens["access"])
    assert claims.session_id == decode_access_token(tokens["access"]).session_id
    assert async_round_trips == []
    assert api.logout(tokens["access"]).status_code == 204  # this process drops it at once
    [result] = check(tokens["access"])
    assert isinstance(result, SessionRevoked)
