"""Redis failures with real processes: stopped, flushed, restarted, cut, slow.

Each test runs its own redis-server behind a TCP proxy (tests/redis_servers.py): the proxy
cuts the link while Redis keeps its keys, as a network partition does, or slows it. Every
request is guarded: it must answer within HANG_CEILING and never with a 500.
"""
from __future__ import annotations

import time
import uuid

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from jwt_sessions import services
from jwt_sessions.models import RevokeReason, Session
from jwt_sessions.redis import layout
from jwt_sessions.redis.mirror import circuit
from tests.conftest import PROXY_RETRY, PROXY_TIMEOUT, Api, assert_error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("through_proxy")]

TIMEOUT = PROXY_TIMEOUT
RETRY = PROXY_RETRY
# A hang detector, not a speed test: a timeout is 0.5 s, a request makes a few calls.
HANG_CEILING = 5.0


class GuardedClient(Client):
    """A test client that fails on a hang or a server error."""

    def request(self, **request):
        started = time.monotonic()
        response = super().request(**request)
        elapsed = time.monotonic() - started
        assert elapsed < HANG_CEILING, f"{request['PATH_INFO']} took {elapsed:.1f} s"
        assert response.status_code < 500 or response.status_code == 503, response.content
        return response


@pytest.fixture
def guarded_api() -> Api:
    """An Api whose client fails the test on a hang or a server error."""
    guarded = Api()
    guarded.client = GuardedClient()
    return guarded


def wait_for_retry() -> None:
    """Let the circuit breaker's retry interval pass (real time: real processes)."""
    time.sleep(RETRY + 0.1)


def kinds_of_keys(server, session_id: str) -> set[str]:
    """Which of a session's keys Redis holds: {"session", "access", "revoked"}."""
    sid = uuid.UUID(session_id)
    starts = {"session": layout.session_key(sid, "0" * 64).rsplit(":", 1)[0] + ":",
              "access": layout.access_key(sid, ""), "revoked": layout.tombstone_key(sid)}
    with server.client() as conn:
        keys = [key.decode() for key in conn.keys(starts["revoked"][:-1] + "*")]
    return {kind for kind, start in starts.items() for key in keys if key.startswith(start)}


# ------------------------------------------------------------------ Redis stopped
def test_stopped_redis_database_policy_keeps_every_flow_working(guarded_api, make_user,
                                                                 redis_server):
    user = make_user()
    first = guarded_api.login_ok(user.username)
    redis_server.stop()
    assert guarded_api.whoami(first["access"]).json()["id"] == user.pk
    second = guarded_api.login_ok(user.username)
    refreshed = guarded_api.refresh_ok(first["refresh"])
    assert_error(guarded_api.whoami(first["access"]), 401, "token_invalid")
    assert len(guarded_api.sessions(refreshed["access"]).json()) == 2
    assert guarded_api.logout(second["access"]).status_code == 204
    assert_error(guarded_api.whoami(second["access"]), 401, "session_revoked")
    assert guarded_api.logout_all(refreshed["access"]).status_code == 204
    assert_error(guarded_api.whoami(refreshed["access"]), 401, "session_revoked")
    assert_error(guarded_api.refresh(refreshed["refresh"]), 401, "session_revoked")


def test_stopped_redis_deny_policy_answers_503_then_recovers(guarded_api, user, redis_server,
                                                             jwt_settings):
    tokens = guarded_api.login_ok(user.username)
    jwt_settings(REDIS_FAILURE_POLICY="deny")
    redis_server.stop()
    assert_error(guarded_api.whoami(tokens["access"]), 503, "service_unavailable")
    assert_error(guarded_api.refresh(tokens["refresh"]), 503, "service_unavailable")
    assert_error(guarded_api.login(user.username), 503, "service_unavailable")
    assert_error(guarded_api.logout(tokens["access"]), 503, "service_unavailable")
    redis_server.start()  # back, empty
    wait_for_retry()
    assert guarded_api.whoami(tokens["access"]).status_code == 200
    assert guarded_api.refresh(tokens["refresh"]).status_code == 200


def test_dead_redis_is_probed_once_per_retry_interval(guarded_api, user, proxy, jwt_settings):
    tokens = guarded_api.login_ok(user.username)
    jwt_settings(REDIS_RETRY_INTERVAL=60)
    proxy.cut("blackhole")  # every attempt would wait for the full timeout
    for _ in range(5):
        assert guarded_api.whoami(tokens["access"]).status_code == 200
    assert proxy.dropped == 1


# ------------------------------------------------------------------ Redis emptied
def _empty(server, how: str) -> None:
    if how == "flushed":
        with server.client() as conn:
            conn.flushall()
    else:
        server.stop()
        server.start()


@pytest.mark.parametrize("how", ["flushed", "restarted"])
def test_emptied_redis_logs_nobody_out_and_revives_no_ended_session(guarded_api, make_user,
                                                                     redis_server, how):
    user = make_user()
    alive, revoked, expired = (guarded_api.login_ok(user.username) for _ in range(3))
    assert guarded_api.logout(revoked["access"]).status_code == 204
    Session.objects.filter(pk=expired["session_id"]).update(
        expires_at=timezone.now() - timezone.timedelta(seconds=1))
    _empty(redis_server, how)

    assert guarded_api.whoami(alive["access"]).status_code == 200
    wait_for_retry()  # a restart breaks pooled connections: the circuit may have opened
    assert guarded_api.whoami(alive["access"]).status_code == 200
    assert kinds_of_keys(redis_server, alive["session_id"]) == {"session", "access"}
    assert guarded_api.whoami(guarded_api.refresh_ok(alive["refresh"])["access"]).status_code == 200

    assert_error(guarded_api.whoami(revoked["access"]), 401, "session_revoked")
    assert_error(guarded_api.refresh(revoked["refresh"]), 401, "session_revoked")
    assert_error(guarded_api.whoami(expired["access"]), 401, "session_revoked")
    assert_error(guarded_api.refresh(expired["refresh"]), 401, "refresh_token_invalid")
    assert kinds_of_keys(redis_server, revoked["session_id"]) == set()
    assert kinds_of_keys(redis_server, expired["session_id"]) == set()


# ------------------------------------------------------------------ network cut
def _logout(guarded_api, user, tokens):
    assert guarded_api.logout(tokens["access"]).status_code == 204


def _logout_all(guarded_api, user, tokens):
    assert guarded_api.logout_all(tokens["access"]).status_code == 204


def _admin_revoke(guarded_api, user, tokens):
    assert services.revoke_sessions(Session.objects.filter(pk=tokens["session_id"]),
                                    RevokeReason.ADMIN) == 1


def _password_change(guarded_api, user, tokens):
    user.set_password("An0ther-Pa55word")
    user.save()


# name: (revoke the victim session during the cut, is the user's other session revoked)
REVOCATIONS = {
    "logout": (_logout, False),
    "logout_all": (_logout_all, True),
    "admin": (_admin_revoke, False),
    "password_change": (_password_change, True),
}


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
@pytest.mark.parametrize("how", list(REVOCATIONS))
def test_revocation_during_a_cut_holds_once_redis_is_back(guarded_api, make_user, redis_server,
                                                          proxy, queries, how, mode):
    revoke, other_revoked = REVOCATIONS[how]
    user, bystander = make_user(), make_user()
    victim, other = guarded_api.login_ok(user.username), guarded_api.login_ok(user.username)
    unrelated = guarded_api.login_ok(bystander.username)
    proxy.cut(mode)
    revoke(guarded_api, user, victim)
    assert_error(guarded_api.whoami(victim["access"]), 401, "session_revoked")
    # Redis kept the session's keys: without a replay it would still vouch for them.
    assert kinds_of_keys(redis_server, victim["session_id"]) == {"session", "access"}

    proxy.restore()
    wait_for_retry()
    assert_error(guarded_api.whoami(victim["access"]), 401, "session_revoked")
    assert "revoked" in kinds_of_keys(redis_server, victim["session_id"])
    assert_error(guarded_api.refresh(victim["refresh"]), 401, "session_revoked")
    if other_revoked:
        assert_error(guarded_api.whoami(other["access"]), 401, "session_revoked")
    else:
        assert guarded_api.whoami(other["access"]).status_code == 200
    with queries() as q:  # Redis is trusted again: a hit costs no SQL
        assert guarded_api.whoami(unrelated["access"]).status_code == 200
    assert len(q.captured_queries) == 0


def test_another_process_sees_a_cut_revocation_at_clearjwtsessions_at_the_latest(
        guarded_api, user, proxy):
    victim, second = guarded_api.login_ok(user.username), guarded_api.login_ok(user.username)
    proxy.cut()
    assert guarded_api.logout_all(victim["access"]).status_code == 204
    proxy.restore()
    circuit.reset()  # stands for another process, one that never saw Redis fail
    # There, Redis still vouches for the access token: the documented window...
    assert guarded_api.whoami(victim["access"]).status_code == 200
    # ...never for a refresh: each rotation is a compare-and-swap on the row.
    assert_error(guarded_api.refresh(second["refresh"]), 401, "session_revoked")
    call_command("clearjwtsessions", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert_error(guarded_api.whoami(victim["access"]), 401, "session_revoked")


def test_refresh_during_a_cut_supersedes_the_old_access_token_once_redis_is_back(
        guarded_api, user, proxy, redis_server):
    old = guarded_api.login_ok(user.username)
    proxy.cut()
    new = guarded_api.refresh_ok(old["refresh"])
    assert_error(guarded_api.whoami(old["access"]), 401, "token_invalid")
    proxy.restore()
    wait_for_retry()
    assert_error(guarded_api.whoami(old["access"]), 401, "token_invalid")
    assert guarded_api.whoami(new["access"]).status_code == 200
    assert guarded_api.whoami(guarded_api.refresh_ok(new["refresh"])["access"]).status_code == 200


# ------------------------------------------------------------------ slow Redis
def test_slow_redis_within_the_timeout_still_serves_from_redis(guarded_api, user, proxy, queries):
    tokens = guarded_api.login_ok(user.username)
    proxy.latency = TIMEOUT / 10
    with queries() as q:
        assert guarded_api.whoami(tokens["access"]).status_code == 200
    assert len(q.captured_queries) == 0
    refreshed = guarded_api.refresh_ok(tokens["refresh"])
    assert guarded_api.whoami(refreshed["access"]).status_code == 200


def test_redis_slower_than_the_timeout_falls_back_to_the_database(guarded_api, user, proxy):
    tokens = guarded_api.login_ok(user.username)
    proxy.latency = TIMEOUT * 2
    assert guarded_api.whoami(tokens["access"]).status_code == 200
    refreshed = guarded_api.refresh_ok(tokens["refresh"])
    wait_for_retry()  # probe the slow Redis again: still no hang
    assert guarded_api.whoami(refreshed["access"]).status_code == 200
    assert guarded_api.login(user.username).status_code == 200
    assert guarded_api.logout(refreshed["access"]).status_code == 204


def test_redis_slower_than_the_timeout_denies_under_policy_deny(guarded_api, user, proxy,
                                                                 jwt_settings):
    tokens = guarded_api.login_ok(user.username)
    jwt_settings(REDIS_FAILURE_POLICY="deny")
    proxy.latency = TIMEOUT * 2
    assert_error(guarded_api.whoami(tokens["access"]), 503, "service_unavailable")
    wait_for_retry()
    assert_error(guarded_api.refresh(tokens["refresh"]), 503, "service_unavailable")
    assert_error(guarded_api.login(user.username), 503, "service_unavailable")
