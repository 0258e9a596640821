"""A database fallback that cannot take the database down.

When Redis is down or was just flushed, every request falls back to the database at once.
`MAX_CONCURRENT_DB_FALLBACKS` bounds the fallbacks running at the same time in one
process: beyond it, 503 `service_unavailable` (never a 500), while requests that Redis
can answer are not slowed. After a flush, one fallback per session rehydrates Redis
without bcrypt, and the traffic after it is Redis hits again.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import bcrypt
import pytest
from django.core import checks
from django.db import connection

from jwt_sessions.models import SessionQuerySet
from jwt_sessions.redis.mirror import circuit
from tests.conftest import Api, assert_error

pytestmark = pytest.mark.django_db(transaction=True)


class StalledDatabase:
    """Session lookups by id made in worker threads wait here until `release()`, each
    holding its fallback slot meanwhile; the test's own thread is never held."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.released = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=8)

    def wait_for(self, count: int) -> None:
        for _ in range(count):
            assert self.entered.acquire(timeout=10), "a worker never reached the database"

    def release(self) -> None:
        self.released.set()

    def submit(self, call, *args) -> Future:
        """Run an API call in a worker thread (with its own database connection)."""
        def run():
            try:
                return call(*args)
            finally:
                connection.close()

        return self.pool.submit(run)


@pytest.fixture
def stalled(monkeypatch):
    stall = StalledDatabase()
    real_by_id = SessionQuerySet.by_id

    def by_id(queryset, session_id):
        if threading.current_thread() is not threading.main_thread():
            stall.entered.release()
            stall.released.wait(10)
        return real_by_id(queryset, session_id)

    monkeypatch.setattr(SessionQuerySet, "by_id", by_id)
    yield stall
    stall.release()
    stall.pool.shutdown(wait=True)


@pytest.fixture
def bcrypt_log(monkeypatch) -> list[str]:
    """Every bcrypt hash or check made from now on."""
    calls: list[str] = []
    for name in ("checkpw", "hashpw"):
        real = getattr(bcrypt, name)

        def spy(*args, _real=real, _name=name):
            calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(bcrypt, name, spy)
    return calls


def _hold_slots(stall: StalledDatabase, sessions: list[dict]) -> list[Future]:
    held = [stall.submit(Api().whoami, s["access"]) for s in sessions]
    stall.wait_for(len(sessions))
    return held


def _statuses(futures: list[Future]) -> list[int]:
    return [future.result(timeout=10).status_code for future in futures]


def test_fallback_beyond_the_bound_gets_503_not_500(api, user, jwt_settings, redis_conn,
                                                      stalled):
    jwt_settings(MAX_CONCURRENT_DB_FALLBACKS=2)
    sessions = [api.login_ok(user.username) for _ in range(3)]
    redis_conn.flushdb()
    held = _hold_slots(stalled, sessions[:2])
    assert_error(api.whoami(sessions[2]["access"]), 503, "service_unavailable")
    stalled.release()
    assert _statuses(held) == [200, 200]
    assert api.whoami(sessions[2]["access"]).status_code == 200  # the slots came back


def test_redis_outage_fallbacks_are_bounded_too(api, user, jwt_settings, stalled):
    jwt_settings(MAX_CONCURRENT_DB_FALLBACKS=1)
    first, second = (api.login_ok(user.username) for _ in range(2))
    circuit.trip()  # Redis known down: policy "database" sends everything to the database
    held = _hold_slots(stalled, [first])
    assert_error(api.whoami(second["access"]), 503, "service_unavailable")
    stalled.release()
    assert _statuses(held) == [200]
    assert api.whoami(second["access"]).status_code == 200


def test_refresh_fallback_is_bounded_and_the_token_survives_a_503(api, user, jwt_settings,
                                                                  redis_conn, stalled):
    jwt_settings(MAX_CONCURRENT_DB_FALLBACKS=1)
    holder, refreshing = (api.login_ok(user.username) for _ in range(2))
    redis_conn.flushdb()
    held = _hold_slots(stalled, [holder])
    assert_error(api.refresh(refreshing["refresh"]), 503, "service_unavailable")
    stalled.release()
    assert _statuses(held) == [200]
    assert api.refresh(refreshing["refresh"]).status_code == 200


def test_requests_redis_answers_pass_while_the_bound_is_full(api, user, jwt_settings,
                                                             redis_conn, stalled):
    jwt_settings(MAX_CONCURRENT_DB_FALLBACKS=1)
    holder = api.login_ok(user.username)
    redis_conn.flushdb()
    held = _hold_slots(stalled, [holder])
    cached = api.login_ok(user.username)  # written to Redis after the flush
    assert api.whoami(cached["access"]).status_code == 200
    assert api.whoami(api.refresh_ok(cached["refresh"])["access"]).status_code == 200
    stalled.release()
    assert _statuses(held) == [200]


def test_changing_the_bound_while_slots_are_held_never_breaks_a_request(
        api, user, jwt_settings, redis_conn, stalled):
    jwt_settings(MAX_CONCURRENT_DB_FALLBACKS=1)
    holder, other = (api.login_ok(user.username) for _ in range(2))
    redis_conn.flushdb()
    held = _hold_slots(stalled, [holder])
    jwt_settings(MAX_CONCURRENT_DB_FALLBACKS=2)
    assert api.whoami(other["access"]).status_code == 200
    stalled.release()
    assert _statuses(held) == [200]


def test_after_a_flush_whoami_rehydrates_and_refresh_is_a_redis_hit_without_bcrypt(
        api, user, redis_conn, queries, bcrypt_log):
    data = api.login_ok(user.username)
    bcrypt_log.clear()
    redis_conn.flushdb()
    assert api.whoami(data["access"]).status_code == 200  # database fallback, rehydrates
    with queries() as q:
        assert api.whoami(data["access"]).status_code == 200
    assert q.captured_queries == []  # a Redis hit again
    new = api.refresh_ok(data["refresh"])
    assert api.whoami(new["access"]).status_code == 200
    assert bcrypt_log == []


def test_after_a_flush_a_refresh_first_pays_bcrypt_once(api, user, redis_conn, bcrypt_log):
    data = api.login_ok(user.username)
    bcrypt_log.clear()
    redis_conn.flushdb()
    second = api.refresh_ok(data["refresh"])  # Redis cannot vouch: the database and bcrypt
    assert bcrypt_log == ["hashpw"]  # the first such refresh stores the session's bcrypt
    api.refresh_ok(second["refresh"])
    assert bcrypt_log == ["hashpw"]


@pytest.mark.parametrize("limit", [0, -1, "8", None, True, 2.5])
def test_a_bound_that_is_not_a_positive_integer_fails_the_checks(jwt_settings, limit):
    jwt_settings(MAX_CONCURRENT_DB_FALLBACKS=limit)
    assert "jwt_sessions.E014" in [message.id for message in checks.run_checks()]


def test_a_positive_bound_passes_the_checks(jwt_settings):
    jwt_settings(MAX_CONCURRENT_DB_FALLBACKS=1)
    assert "jwt_sessions.E014" not in [message.id for message in checks.run_checks()]
