"""Shared fixtures: users, an API client speaking JSON, Redis access, query counting."""
from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytest_plugins = ["tests.ssf_helpers"]  # the Shared Signals fixtures

PASSWORD = "Pa55word-for-tests"
UA_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
UA_MAC_CHROME = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                 "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")

T = TypeVar("T")
_ips = itertools.count(1)
_users = itertools.count(1)


def next_ip() -> str:
    """A fresh client address per call, so per-IP throttles never interfere."""
    n = next(_ips)
    return f"10.{(n // 65536) % 256}.{(n // 256) % 256}.{n % 256}"


def all_at_once(count: int, attempt: Callable[[], T]) -> list[T]:
    """`attempt` run by `count` threads released together, each on its own database
    connection; what each returned, in the order they finished."""
    start = threading.Barrier(count)
    results: list[T] = []

    def run() -> None:
        from django.db import connection

        try:
            start.wait()
            results.append(attempt())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def url(name: str, *args) -> str:
    return reverse(f"jwt_sessions:{name}", args=args or None)


def bearer(access: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {access}"}


class Api:
    """django.test.Client speaking the JSON API of jwt_sessions.urls."""

    def __init__(self) -> None:
        self.client = Client()

    def post(self, path: str, body=None, **extra):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body or {})
        return self.client.post(path, data=data, content_type="application/json", **extra)

    def login(self, username: str, password: str = PASSWORD, ua: str = UA_MAC_CHROME,
              ip: str | None = None, **extra):
        return self.post(url("login"), {"username": username, "password": password},
                         HTTP_USER_AGENT=ua, REMOTE_ADDR=ip or next_ip(), **extra)

    def login_ok(self, username: str, **kw) -> dict:
        resp = self.login(username, **kw)
        assert resp.status_code == 200, resp.content
        return resp.json()

    def refresh(self, token, **extra):
        extra.setdefault("REMOTE_ADDR", next_ip())
        return self.post(url("refresh"), {"refresh": token}, **extra)

    def refresh_ok(self, token: str) -> dict:
        resp = self.refresh(token)
        assert resp.status_code == 200, resp.content
        return resp.json()

    def whoami(self, access: str, **extra):
        return self.client.get("/api/whoami/", **bearer(access), **extra)

    def me(self, access: str):
        return self.client.get("/api/me/", **bearer(access))

    def logout(self, access: str):
        return self.post(url("logout"), **bearer(access))

    def logout_all(self, access: str, body=None):
        return self.post(url("logout-all"), body, **bearer(access))

    def sessions(self, access: str):
        return self.client.get(url("session-list"), **bearer(access))

    def delete_session(self, access: str, session_id) -> object:
        return self.client.delete(f"{url('session-list')}{session_id}/", **bearer(access))


def assert_error(resp, status: int, code: str) -> dict:
    """Our error body: {"detail", "code"}; 401 carries WWW-Authenticate: Bearer."""
    assert resp.status_code == status, (resp.status_code, resp.content)
    body = resp.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    if status == 401:
        assert resp["WWW-Authenticate"].startswith("Bearer"), resp.headers
    return body


@pytest.fixture(autouse=True)
def _clean_state(settings):
    """Each test starts with an empty Redis and a closed circuit breaker."""
    from django_redis import get_redis_connection

    from jwt_sessions.redis import recovery
    from jwt_sessions.redis.mirror import _claimed_while_down, circuit

    circuit.reset()
    get_redis_connection("default").flushdb()
    yield
    recovery.stop()
    circuit.reset()
    _claimed_while_down.clear()
    _stop_event_receiver()


def _stop_event_receiver() -> None:
    """No test leaves a revocation-event receiver thread behind."""
    import threading

    from jwt_sessions import events

    events.stop()
    leaked = [t for t in threading.enumerate() if t.name == "jwt_sessions-events"]
    assert not leaked, f"event receiver threads leaked: {leaked}"


@pytest.fixture
def redis_conn():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


@pytest.fixture
def round_trips(monkeypatch):
    """Counts requests on the wire (a command, a pipeline or a script each), but not the
    event receiver's own."""
    import threading

    from redis.connection import AbstractConnection

    sent = [0]
    real = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        if threading.current_thread().name != "jwt_sessions-events":
            sent[0] += 1
        return real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
def gateway(api, make_user) -> str:
    """The access token of a service account allowed to introspect."""
    from tests.token_endpoints import grant_introspection

    account = make_user("gateway")
    grant_introspection(account)
    return api.login_ok(account.username)["access"]


@pytest.fixture
def make_user(django_user_model):
    def make(username: str | None = None, **fields):
        return django_user_model.objects.create_user(
            username=username or f"user{next(_users)}", password=PASSWORD, **fields)

    return make


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def tokens(api, user) -> dict:
    """A logged-in session of `user`: the login response body."""
    return api.login_ok(user.username)


@pytest.fixture
def queries():
    from django.db import connection

    return lambda: CaptureQueriesContext(connection)


@pytest.fixture
def jwt_settings(settings):
    """jwt_settings(KEY=value): override JWT_SESSIONS keys for one test."""

    def override(**values):
        settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, **values}

    return override


def pytest_sessionstart(session):
    """Live mode never skips silently: an unreachable Redis ends the run as a failure."""
    import os

    url_ = os.environ.get("REDIS_URL")
    if url_:
        import redis

        try:
            redis.Redis.from_url(url_, socket_timeout=3).ping()
        except redis.RedisError as exc:
            pytest.exit(f"REDIS_URL={url_} is not reachable: {exc}", returncode=3)


@pytest.fixture
def signal_log():
    """signal_log(signal) -> a list that receives the kwargs of each send, until teardown."""
    connected = []

    def listen(signal):
        calls = []

        def receiver(sender, **kwargs):
            calls.append({"sender": sender, **kwargs})

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return calls

    yield listen
    for signal, receiver in connected:
        signal.disconnect(receiver)


@pytest.fixture
def clock():
    """Frozen time starting at the real now (so a live Redis's clock roughly agrees);
    move it with clock.tick(seconds) or clock.tick(timedelta)."""
    from django.utils import timezone
    from freezegun import freeze_time

    with freeze_time(timezone.now()) as frozen:
        yield frozen


@pytest.fixture
def bcrypt_calls(monkeypatch):
    """Counts bcrypt work: {"hashpw": n, "checkpw": n}, the real functions still run."""
    import bcrypt

    calls = {"hashpw": 0, "checkpw": 0}
    for name in calls:
        real = getattr(bcrypt, name)

        def spy(*args, _real=real, _name=name):
            calls[_name] += 1
            return _real(*args)

        monkeypatch.setattr(bcrypt, name, spy)
    return calls


# ------------------------------------------------------------------ real Redis processes
@pytest.fixture
def redis_server():
    """An own redis-server on a free loopback port, stopped by its pid."""
    from tests.redis_servers import start_redis

    server = start_redis()
    yield server
    server.close()


@pytest.fixture(scope="module")
def module_redis():
    """A redis-server of its own for one test module (shared with its server process)."""
    from tests.redis_servers import start_redis

    server = start_redis()
    yield server
    server.close()


@pytest.fixture
def proxy(redis_server):
    """A TCP proxy in front of `redis_server` that tests can cut, slow down or blackhole."""
    from tests.redis_servers import TcpProxy

    link = TcpProxy(redis_server.port)
    yield link
    link.close()


PROXY_TIMEOUT = 0.5  # the cache's socket connect/read timeout through `proxy`, seconds
PROXY_RETRY = 0.2  # REDIS_RETRY_INTERVAL there, seconds


@pytest.fixture
def through_proxy(settings, proxy, jwt_settings):
    """The cache (so the store, the mirror and the event listener) reaches Redis through
    `proxy`, with short timeouts, for one test; the listener and the pools end with it."""
    from jwt_sessions.redis import events
    from tests.redis_servers import forget_redis_pools, point_cache_at

    point_cache_at(settings, proxy.url(), timeout=PROXY_TIMEOUT)
    jwt_settings(REDIS_RETRY_INTERVAL=PROXY_RETRY)
    yield proxy
    events.stop()
    forget_redis_pools()


@pytest.fixture
def heard():
    """The revocation events this process receives, from a healthy subscription on."""
    from jwt_sessions import events
    from tests.event_consumers import Heard

    consumer = Heard()
    unsubscribe = events.subscribe(consumer)
    assert events.wait_until_healthy(5)
    consumer.events.clear()  # the receiver's first subscription is a gap: nothing held yet
    yield consumer
    unsubscribe()
