"""Shared Signals between two real processes: this test process is transmitter A (its
revocations push SETs from its outbox), a uvicorn process with its own database and
Redis is receiver B. A revocation in A ends B's session as a verified SET; B down for a
while loses nothing; a delivery cut short by A's death is finished by the command (in
yet another process) and not applied twice."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from django.db import connection

from jwt_sessions import api as jwt_api
from jwt_sessions.shared_signals.models import DeliveryMethod, SsfOutboxEvent, SsfStream
from jwt_sessions.shared_signals.pusher import pusher
from tests.asgi_server import ROOT, database_url
from tests.ssf_helpers import B_AUDIENCE, CREDENTIAL_CHANGE, SESSION_REVOKED, PeerB

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ssf_on")]


@pytest.fixture
def peer_b(tmp_path):
    peer = PeerB(tmp_path)
    peer.start()
    yield peer
    peer.close()


@pytest.fixture
def stream_to_b(settings, stream_manager, peer_b):
    settings.JWT_SESSIONS["SHARED_SIGNALS"].update(RETRY_MAX_INTERVAL=0.5)
    return SsfStream.objects.create(
        owner=stream_manager, audience=B_AUDIENCE, delivery_method=DeliveryMethod.PUSH,
        endpoint_url=peer_b.receive_url,
        events_requested=[SESSION_REVOKED, CREDENTIAL_CHANGE])


def _until(condition, timeout: float = 20.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_revocation_in_a_ends_the_session_in_b(stream_to_b, peer_b, api, user):
    in_a = api.login_ok(user.username)
    in_b = peer_b.login(user)
    assert peer_b.whoami(in_b["access"]) == 200
    jwt_api.revoke_session(in_a["session_id"])  # names A's session: nothing of B's
    _until(lambda: SsfOutboxEvent.objects.filter(delivered_at__isnull=False).count() == 1)
    assert peer_b.whoami(in_b["access"]) == 200
    # A password change in A is a `credential-change` for the whole account.
    user.set_password("changed-Pa55word")
    user.save()
    _until(lambda: peer_b.whoami(in_b["access"]) == 401)
    _until(lambda: not SsfOutboxEvent.objects.filter(delivered_at__isnull=True).exists())


def test_b_down_for_a_while_loses_nothing(stream_to_b, peer_b, user):
    in_b = peer_b.login(user)
    peer_b.stop()
    user.set_password("changed-Pa55word")
    user.save()
    _until(lambda: SsfOutboxEvent.objects.get().attempts >= 3)  # refused, retried
    peer_b.start()
    _until(lambda: SsfOutboxEvent.objects.get().delivered_at is not None)
    assert peer_b.whoami(in_b["access"]) == 401


def test_a_dead_transmitter_is_drained_by_the_command_once(stream_to_b, peer_b, user,
                                                           monkeypatch, settings):
    first = peer_b.login(user)
    user.set_password("changed-Pa55word")
    user.save()
    _until(lambda: SsfOutboxEvent.objects.get().delivered_at is not None)
    assert peer_b.whoami(first["access"]) == 401
    # A pushed, B acted, and A died before it wrote down the 202: the row is still due.
    SsfOutboxEvent.objects.update(delivered_at=None, next_attempt_at="2000-01-01T00:00Z")
    pusher.stop()
    second = peer_b.login(user)  # a session B opened after the event
    a_env = {"DJANGO_SETTINGS_MODULE": "tests.ssf_settings",
             "JWTS_SERVER_DATABASE_URL": database_url(connection.settings_dict),
             "JWTS_SERVER_REDIS_URL": peer_b.redis.url,
             "JWTS_SHARED_SIGNALS": json.dumps(settings.JWT_SESSIONS["SHARED_SIGNALS"])}
    connection.close()  # SQLite: let the command's process write
    done = subprocess.run([sys.executable, "-m", "django", "sendsecurityevents"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **a_env})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 event(s) attempted, 0 pending" in done.stdout
    assert SsfOutboxEvent.objects.get().delivered_at is not None
    assert peer_b.whoami(second["access"]) == 200  # acknowledged by jti, not applied again
