"""WebSockets through a real ASGI server process (uvicorn) and a real client (`websockets`).

The server is another process with its own event receiver: a session revoked here, in the
test process, must close its sockets there with code 4401 within a second. Handshakes
with bad input are refused without an unhandled exception in the server's log.
"""
from __future__ import annotations

import json
import time
from contextlib import ExitStack

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from jwt_sessions import services
from jwt_sessions.channels import CLOSE_SESSION_REVOKED
from jwt_sessions.redis import layout
from tests.asgi_server import serving_the_test_database
from tests.jwt_forge import hmac_sign, parts
from tests.polling import eventually
from tests.redis_servers import forget_redis_pools, point_cache_at

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/session/"
CLOSE_WITHIN = 1.0  # seconds: the promise


@pytest.fixture(scope="module")
def server(module_redis, django_db_setup, django_db_blocker, tmp_path_factory):
    with serving_the_test_database(module_redis.url, django_db_blocker,
                                   tmp_path_factory.mktemp("asgi")) as running:
        yield running


@pytest.fixture(autouse=True)
def _same_redis_as_the_server(settings, module_redis, server):
    point_cache_at(settings, module_redis.url)
    module_redis.client().flushdb()
    yield
    forget_redis_pools()


def open_socket(server, token: str | None = None, *, header: bool = False,
                subprotocols: list[str] | None = None, headers: list | None = None):
    """A connected client: the token as a subprotocol (a browser) or as a header."""
    extra = list(headers or [])
    offered = subprotocols
    if token is not None and header:
        extra.append(("Authorization", f"Bearer {token}"))
    elif token is not None:
        offered = ["jwt_sessions", f"jwt_sessions.bearer.{token}"]
    return connect(server.ws + PATH, additional_headers=extra or None,
                   subprotocols=offered, open_timeout=5, max_size=2**20)


def wait_until_the_server_hears_events(module_redis) -> None:
    """The readiness signal of the server's events receiver: its subscription to the
    events channel, after which every revocation published reaches it."""
    channel = layout.events_channel()
    with module_redis.client() as conn:
        eventually(lambda: conn.pubsub_numsub(channel)[0][1] >= 1, 5,
                   "the server to subscribe to the revocation events")


def first_message(ws) -> dict:
    return json.loads(ws.recv(timeout=5))


def closed_with(ws, timeout: float) -> tuple[int | None, float]:
    """Wait for the server to close: (close code, seconds waited)."""
    started = time.monotonic()
    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else None), time.monotonic() - started
    except TimeoutError:
        return None, time.monotonic() - started


def assert_refused(server, **kwargs) -> None:
    with pytest.raises((InvalidStatus, ConnectionClosed, OSError)) as caught:
        with open_socket(server, **kwargs) as ws:
            ws.recv(timeout=2)
    if isinstance(caught.value, InvalidStatus):
        assert caught.value.response.status_code in (400, 403, 431), caught.value


def assert_clean_log(server) -> None:
    log = server.log_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]


# ------------------------------------------------------------------ handshakes
def test_browser_handshake_by_subprotocol_never_echoes_the_token(server, api, user):
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        assert ws.subprotocol == "jwt_sessions"
        assert first_message(ws) == {"type": "session", "session_id": tokens["session_id"],
                                     "user_id": user.pk}
        ws.send(json.dumps({"type": "ping"}))
        assert first_message(ws) == {"type": "pong"}
        assert tokens["access"] not in str(ws.response.headers)


def test_native_handshake_by_authorization_header(server, api, user):
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"], header=True) as ws:
        assert ws.subprotocol is None
        assert first_message(ws)["session_id"] == tokens["session_id"]


def test_the_token_stays_out_of_the_access_log(server, api, user):
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
    assert PATH in server.log_text()
    assert tokens["access"] not in server.log_text()


@pytest.mark.parametrize("how", ["revoked", "expired", "truncated", "forged", "garbage",
                                 "100 KB", "no token"])
def test_bad_tokens_are_refused_before_accept(server, api, user, how):
    tokens = api.login_ok(user.username)
    access = tokens["access"]
    if how == "revoked":
        assert api.logout(access).status_code == 204
    elif how == "expired":
        header, claims = parts(access)
        claims["exp"] = claims["iat"] - 1
        claims["iat"] -= 3600
        from django.conf import settings

        access = hmac_sign(header, claims, settings.SECRET_KEY)
    elif how == "truncated":
        access = access[:-12]
    elif how == "forged":
        access = hmac_sign(*parts(access), key="another-key-" + "k" * 40)
    elif how == "garbage":
        access = "not-a-jwt"
    elif how == "100 KB":
        access = "a" * 100_000
    for kwargs in ([{"token": None}] if how == "no token" else
                   [{"token": access}, {"token": access, "header": True}]):
        assert_refused(server, **kwargs)
    assert_clean_log(server)


@pytest.mark.parametrize("case", ["wrong scheme", "two headers", "header and subprotocol",
                                  "two subprotocol tokens", "token without marker",
                                  "1000 subprotocols", "empty token"])
def test_ambiguous_handshakes_are_refused(server, api, user, case):
    access = api.login_ok(user.username)["access"]
    bearer = f"jwt_sessions.bearer.{access}"
    kwargs = {
        "wrong scheme": {"headers": [("Authorization", f"Basic {access}")]},
        "two headers": {"headers": [("Authorization", f"Bearer {access}"),
                                    ("Authorization", f"Bearer {access}")]},
        "header and subprotocol": {"headers": [("Authorization", f"Bearer {access}")],
                                   "subprotocols": ["jwt_sessions", bearer]},
        "two subprotocol tokens": {"subprotocols": ["jwt_sessions", bearer, bearer + "x"]},
        "token without marker": {"subprotocols": [bearer]},
        "1000 subprotocols": {"subprotocols": ["jwt_sessions", bearer]
                              + [f"p{i}" for i in range(1000)]},
        "empty token": {"subprotocols": ["jwt_sessions", "jwt_sessions.bearer."]},
    }[case]
    assert_refused(server, **kwargs)
    assert_clean_log(server)


# ------------------------------------------------------------------ revocation closes
def test_revocation_here_closes_the_socket_there_with_4401_within_a_second(
        server, module_redis, api, user):
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
        wait_until_the_server_hears_events(module_redis)
        assert services.revoke_session(tokens["session_id"])
        code, waited = closed_with(ws, timeout=5)
    assert code == CLOSE_SESSION_REVOKED
    assert waited < CLOSE_WITHIN, f"closed after {waited:.3f} s"
    assert_clean_log(server)


def test_every_socket_of_the_session_closes_and_no_other(server, api, user, make_user):
    doomed = api.login_ok(user.username)
    other = api.login_ok(make_user().username)
    with ExitStack() as stack:
        sockets = [stack.enter_context(open_socket(server, doomed["access"])),
                   stack.enter_context(open_socket(server, doomed["access"], header=True))]
        survivor = stack.enter_context(open_socket(server, other["access"]))
        for ws in [*sockets, survivor]:
            first_message(ws)
        assert api.logout(doomed["access"]).status_code == 204
        for ws in sockets:
            code, waited = closed_with(ws, timeout=5)
            assert code == CLOSE_SESSION_REVOKED and waited < CLOSE_WITHIN
        survivor.send(json.dumps({"type": "ping"}))
        assert first_message(survivor) == {"type": "pong"}


def test_a_refresh_does_not_close_the_socket(server, api, user):
    """The session is what is checked: a socket may outlive its access token."""
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
        api.refresh_ok(tokens["refresh"])
        code, _ = closed_with(ws, timeout=0.5)
        assert code is None
        ws.send(json.dumps({"type": "ping"}))
        assert first_message(ws) == {"type": "pong"}


def test_password_change_closes_the_users_sockets(server, api, user):
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
        user.set_password("another-Pa55word")
        user.save()
        code, waited = closed_with(ws, timeout=5)
    assert code == CLOSE_SESSION_REVOKED and waited < CLOSE_WITHIN


def test_revocation_missed_during_a_redis_restart_closes_the_socket_on_resync(
        server, api, user, module_redis, jwt_settings):
    """Redis restarts (empty) while the session is revoked: no event reaches the server,
    whose receiver reports the gap and re-checks its sockets against the database."""
    tokens = api.login_ok(user.username)
    with open_socket(server, tokens["access"]) as ws:
        first_message(ws)
        module_redis.stop()
        assert services.revoke_session(tokens["session_id"])  # database only
        module_redis.start()
        code, waited = closed_with(ws, timeout=15)
    assert code == CLOSE_SESSION_REVOKED, f"still open after {waited:.1f} s"
