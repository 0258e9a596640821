"""Revocation events with real processes: another process hears them; a cut, a silent
partition or a Redis restart is reported as a gap, and consumers resynchronise after it.

Each test runs its own redis-server behind a TCP proxy (tests/redis_servers.py), with a
fast heartbeat so that the bounds are short.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from jwt_sessions.redis import events
from jwt_sessions.redis.mirror import SessionKeys, circuit
from jwt_sessions.redis.store import store
from tests.event_consumers import Heard, is_event
from tests.polling import eventually

pytestmark = pytest.mark.django_db(transaction=True)

HEARTBEAT = 0.1  # seconds: a beat not back within 0.3 s is a gap
STALE = events.STALE_AFTER_BEATS * HEARTBEAT
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fast_heartbeat(through_proxy, jwt_settings):
    jwt_settings(EVENTS_HEARTBEAT=HEARTBEAT)


def some_session() -> SessionKeys:
    return SessionKeys(uuid.uuid4(), "ab" * 32, "a-jti", 1)


def gaps(heard: Heard) -> int:
    return sum(1 for event in heard.events if event.kind == events.GAP)


def wait_for_gaps(heard: Heard, count: int, timeout: float) -> float:
    """Seconds until `count` gaps were reported (fails after `timeout`)."""
    return eventually(lambda: gaps(heard) >= count, timeout, f"{count} gap(s)", 0.01)


# ------------------------------------------------------------------ other processes
LISTENER = """
import sys, django
django.setup()
from jwt_sessions.redis import events
events.subscribe(lambda e: e.kind != "gap" and print(e.kind, e.session_id, e.access_jti,
                                                   flush=True))
assert events.wait_until_healthy(10)
print("ready", flush=True)
sys.stdin.read()  # until the test closes stdin
events.stop()
"""


def test_another_process_hears_revocations_and_rotations(redis_server):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "REDIS_URL": redis_server.url, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    child = subprocess.Popen([sys.executable, "-c", LISTENER], env=env, cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        revoked, rotated = some_session(), some_session()
        store.forget([revoked])
        store.forget([rotated], tombstone=False)
        assert child.stdout.readline().split() == ["revoked", str(revoked.session_id), "None"]
        assert child.stdout.readline().split() == ["rotated", str(rotated.session_id),
                                                    "a-jti"]
    finally:
        child.stdin.close()
        assert child.wait(10) == 0


# ------------------------------------------------------------------ gaps
def test_a_cut_is_a_gap_and_reconnection_resynchronises(proxy, heard):
    proxy.cut("refuse")
    wait_for_gaps(heard, 1, timeout=5)
    assert not events.healthy()
    proxy.restore()
    wait_for_gaps(heard, 2, timeout=10)  # the subscription is back: re-check now
    assert events.wait_until_healthy(5)
    after = some_session()
    store.forget([after])
    heard.wait_for(is_event(events.REVOKED, after.session_id))
    assert gaps(heard) == 2


def test_a_silent_partition_is_a_gap_within_the_heartbeat_bound(proxy, heard):
    proxy.cut("blackhole")  # packets dropped, no connection closed
    started = time.monotonic()
    while events.healthy():
        time.sleep(0.005)
    untrusted_after = time.monotonic() - started
    assert untrusted_after <= STALE + HEARTBEAT + 0.2
    assert wait_for_gaps(heard, 1, timeout=5) <= STALE + 1.0
    proxy.restore()
    wait_for_gaps(heard, 2, timeout=10)
    assert events.wait_until_healthy(10)


def test_a_redis_restart_is_a_gap_and_reconnection_resynchronises(redis_server, heard):
    redis_server.stop()
    wait_for_gaps(heard, 1, timeout=5)
    redis_server.start()
    wait_for_gaps(heard, 2, timeout=10)
    assert events.wait_until_healthy(10)
    after = some_session()
    store.forget([after])
    heard.wait_for(is_event(events.REVOKED, after.session_id))


def test_a_changed_run_id_is_a_gap(heard, monkeypatch):
    real = store.publish_heartbeat
    monkeypatch.setattr(store, "publish_heartbeat",
                        lambda *args: real(*args) and "another-server")
    wait_for_gaps(heard, 1, timeout=5)


def test_revocations_replayed_after_an_outage_are_published(api, user, proxy, heard):
    tokens = api.login_ok(user.username)
    proxy.cut("refuse")
    assert api.logout(tokens["access"]).status_code == 204  # Redis unreachable: queued
    assert circuit.needs_replay
    proxy.restore()
    assert events.wait_until_healthy(10)
    time.sleep(0.25)  # past REDIS_RETRY_INTERVAL: the next call replays first
    assert api.whoami(tokens["access"]).status_code == 401
    heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))


def test_a_refused_subscription_is_logged(settings, redis_server, caplog):
    import logging

    with redis_server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "default", "resetchannels")
    try:
        with caplog.at_level(logging.WARNING, logger="jwt_sessions"):
            unsubscribe = events.subscribe(lambda event: None)
            try:
                assert not events.wait_until_healthy(1)
            finally:
                unsubscribe()
        assert any("Revocation events" in r.getMessage() and "NoPermissionError" in r.getMessage()
                   for r in caplog.records), [r.getMessage() for r in caplog.records]
    finally:
        with redis_server.client() as admin:
            admin.execute_command("ACL", "SETUSER", "default", "allchannels")
