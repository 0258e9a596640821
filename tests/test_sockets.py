"""A socket lives exactly as long as its session, through a real ASGI server (uvicorn, its
own process, its own event receiver) and a real redis-server: closed with 4401 within a
second of its session ending for any reason (revocation, idle or absolute end, a user
changed behind the ORM's back, found at the access token's expiry), Redis paused or
killed included; kept open while the session lives; never closed by a forged event."""
from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime

import pytest
from django.contrib.auth import get_user_model

from jwt_sessions import services
from jwt_sessions.channels import CLOSE_SESSION_REVOKED
from jwt_sessions.redis import layout
from tests.asgi_server import serving_the_test_database
from tests.redis_servers import forget_redis_pools, point_cache_at
from tests.test_websockets import closed_with, first_message, open_socket

pytestmark = pytest.mark.django_db(transaction=True)

ACCESS_LIFETIME = 2  # seconds, here and in the server
CLOSE_WITHIN = 1.0  # seconds: the promise
SHORT = {"ACCESS_TOKEN_LIFETIME": ACCESS_LIFETIME, "REFRESH_REUSE_GRACE": 0}


@pytest.fixture(scope="module")
def server(module_redis, django_db_setup, django_db_blocker, tmp_path_factory):
    with serving_the_test_database(module_redis.url, django_db_blocker,
                                   tmp_path_factory.mktemp("asgi"),
                                   env={"JWTS_SERVER_JWT_SESSIONS": json.dumps(SHORT)}) as running:
        yield running


@pytest.fixture(autouse=True)
def _same_settings_as_the_server(settings, jwt_settings, module_redis, server):
    jwt_settings(**SHORT)
    point_cache_at(settings, module_redis.url)
    module_redis.client().flushdb()
    yield
    forget_redis_pools()


def expiry(tokens: dict, key: str = "access_expires_at") -> float:
    return datetime.fromisoformat(tokens[key]).timestamp()


def still_open(ws) -> bool:
    ws.send(json.dumps({"type": "ping"}))
    return first_message(ws) == {"type": "pong"}


def assert_closed_within_a_second_of(ws, ended: float) -> None:
    code, _ = closed_with(ws, timeout=ended - time.time() + 5)
    late = time.time() - ended
    assert code == CLOSE_SESSION_REVOKED, code
    assert late < CLOSE_WITHIN, f"closed {late:.3f} s after the session ended"


def assert_clean_log(server) -> None:
    log = server.log_text()
    assert "Traceback" not in log, log[-3000:]


# ------------------------------------------------------------------ live sessions
def test_sockets_of_a_live_session_stay_open_past_the_tokens_expiry(server, api, user):
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
        time.sleep(max(0.0, expiry(tokens) - time.time()) + 1.5)  # re-checked: live
        assert still_open(ws)
    assert_clean_log(server)


def test_sockets_forged_revocation_event_changes_nothing(server, api, user, module_redis):
    """A bare PUBLISH naming a live session (the channel is fixed, the session id is in
    every access token) is a hint: the server looks, finds the session alive, and keeps
    the socket; the token still answers over HTTP."""
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
        time.sleep(0.3)
        import uuid

        record = layout.event_record(uuid.UUID(tokens["session_id"]))
        for _ in range(5):
            module_redis.client().publish(layout.events_channel(), b"R" + record)
        time.sleep(0.5)
        assert still_open(ws)
    assert api.whoami(tokens["access"]).status_code == 200


# ------------------------------------------------------------------ sessions that end
@pytest.mark.parametrize("change", ["deactivated", "password changed", "deleted"])
def test_sockets_of_a_user_changed_behind_the_orm_close_at_the_tokens_expiry(
        server, api, make_user, change):
    user = make_user()
    tokens = api.login_ok(user.username)
    users = get_user_model().objects.filter(pk=user.pk)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
        if change == "deactivated":
            users.update(is_active=False)  # no signal, no save: nothing revoked the session
        elif change == "password changed":
            users.update(password="pbkdf2_sha256$1$x$y")
        else:
            from jwt_sessions.models import Session

            Session.objects.filter(user_id=user.pk).delete()  # the cascade, raw
            users.delete()
        assert_closed_within_a_second_of(ws, expiry(tokens))
    assert_clean_log(server)


def test_sockets_close_at_the_sessions_idle_end_and_live_while_it_is_renewed(
        server, api, user, jwt_settings):
    jwt_settings(REFRESH_TOKEN_LIFETIME=1.5)
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
        time.sleep(1.0)
        renewed = api.refresh_ok(tokens["refresh"])  # the idle end moves on
        time.sleep(max(0.0, expiry(tokens, "refresh_expires_at") - time.time()) + 0.3)
        assert still_open(ws)
        assert_closed_within_a_second_of(ws, expiry(renewed, "refresh_expires_at"))


def test_sockets_close_at_the_sessions_absolute_end(server, api, user, jwt_settings):
    jwt_settings(SESSION_MAX_LIFETIME=3)
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
        time.sleep(1.5)
        api.refresh_ok(tokens["refresh"])  # a refresh never extends the absolute end
        assert_closed_within_a_second_of(ws, expiry(tokens, "refresh_expires_at"))


# ------------------------------------------------------------------ Redis faults
def test_sockets_of_a_session_revoked_while_redis_is_paused_close_within_a_second(
        server, api, user, make_user, module_redis):
    """SIGSTOP: no event, no answer, nothing closed; the server's beats stop coming back,
    so it asks the database about its sockets twice a second."""
    doomed = api.login_ok(user.username)
    other = api.login_ok(make_user().username)
    with open_socket(server, doomed["access"]) as ws, \
            open_socket(server, other["access"]) as survivor:
        first_message(ws)
        first_message(survivor)
        time.sleep(0.3)
        assert module_redis.process is not None
        os.kill(module_redis.process.pid, signal.SIGSTOP)
        try:
            time.sleep(0.2)
            assert services.revoke_session(doomed["session_id"])  # the database; Redis hangs
            assert_closed_within_a_second_of(ws, time.time())
        finally:
            os.kill(module_redis.process.pid, signal.SIGCONT)
        assert still_open(survivor)
    assert_clean_log(server)


def test_sockets_of_a_session_revoked_while_redis_is_killed_close_within_a_second(
        server, api, user, module_redis):
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
        time.sleep(0.3)
        module_redis.stop()
        try:
            assert services.revoke_session(tokens["session_id"])  # the database only
            assert_closed_within_a_second_of(ws, time.time())
        finally:
            module_redis.start()
    assert_clean_log(server)
