"""Rate limits on login and refresh: scopes, defaults, overrides, 429 shape,
atomic counting, and throttle counters that cannot be reached (never a 500)."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from jwt_sessions.redis import layout
from jwt_sessions.redis.client import clients
from jwt_sessions.redis.mirror import StoreUnavailable
from jwt_sessions.redis.store import store
from tests.conftest import PASSWORD, Api, assert_error, next_ip

pytestmark = pytest.mark.django_db(transaction=True)


def assert_throttled(resp) -> None:
    assert_error(resp, 429, "throttled")
    assert 1 <= int(resp["Retry-After"]) <= 60


@pytest.fixture
def rates(settings):
    """rates(scope=rate): override DRF's DEFAULT_THROTTLE_RATES for one test."""
    def override(**values):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                                   "DEFAULT_THROTTLE_RATES": values}
    return override


def test_login_is_limited_per_client_ip_by_default(api, make_user):
    ip = next_ip()
    for n in range(20):  # distinct usernames: only the per-IP scope can trip
        assert_error(api.login(f"nobody{n}", ip=ip), 401, "invalid_credentials")
    assert_throttled(api.login("nobody-else", ip=ip))
    assert api.login_ok(make_user().username)  # another address is not affected


def test_failed_logins_are_limited_per_username(api, user, clock):
    for _ in range(10):  # each from a fresh address
        assert_error(api.login(user.username, password="wrong"), 401, "invalid_credentials")
    assert_throttled(api.login(user.username))  # even with the right password now
    assert_throttled(api.login(user.username.upper()))
    clock.tick(61)
    assert api.login(user.username).status_code == 200


def test_successful_logins_do_not_count_per_username(api, user):
    for _ in range(15):
        api.login_ok(user.username)
    for _ in range(9):
        api.login(user.username, password="wrong")
    api.login_ok(user.username)


def test_refresh_is_limited_per_client_ip(api, tokens):
    ip = next_ip()
    for _ in range(60):
        assert_error(api.refresh("x" * 107, REMOTE_ADDR=ip), 401, "refresh_token_invalid")
    assert_throttled(api.refresh(tokens["refresh"], REMOTE_ADDR=ip))
    api.refresh_ok(tokens["refresh"])


def test_rates_are_overridable(api, user, rates):
    rates(jwt_sessions_login="2/min", jwt_sessions_login_user="1/min",
          jwt_sessions_refresh="1/min")
    ip = next_ip()
    api.login_ok(user.username, ip=ip)
    api.login_ok(user.username, ip=ip)
    assert_throttled(api.login(user.username, ip=ip))
    assert api.login(user.username, password="wrong").status_code == 401
    assert_throttled(api.login(user.username))
    api.refresh(tokens_refresh := "y" * 107, REMOTE_ADDR=ip)
    assert_throttled(api.refresh(tokens_refresh, REMOTE_ADDR=ip))


def test_a_scope_set_to_none_is_off(api, rates):
    rates(jwt_sessions_login=None, jwt_sessions_login_user=None)
    ip = next_ip()
    for _ in range(25):
        assert api.login("someone", password="wrong", ip=ip).status_code == 401


def test_parallel_guesses_cannot_outrun_the_per_username_limit(api, user, clock):
    """All guesses are in flight before any has failed: counting must be atomic and
    happen before the password check."""
    barrier = threading.Barrier(16)

    def guess(_n: int) -> int:
        try:
            barrier.wait(timeout=30)
            return Api().login(user.username, password="wrong").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(guess, range(16)))
    assert statuses.count(401) == 10 and statuses.count(429) == 6, statuses


# ------------------------------------------------------------------ cache down
@pytest.fixture
def throttle_store_down(monkeypatch):
    """The throttles' counters cannot be reached (Redis answers nothing useful)."""
    def unreachable(*args, **kwargs):
        raise StoreUnavailable("ConnectionError")

    monkeypatch.setattr(store, "add_to_counter", unreachable)


def test_throttle_store_down_lets_requests_through_and_logs(api, user, throttle_store_down,
                                                            caplog):
    with caplog.at_level(logging.WARNING, logger="jwt_sessions"):
        data = api.login_ok(user.username)
        api.refresh_ok(data["refresh"])
        assert api.login(user.username, password="wrong").status_code == 401
    assert "Throttle store unavailable" in caplog.text


def test_throttle_store_down_under_deny_policy_is_503(api, user, tokens, throttle_store_down,
                                                      jwt_settings):
    jwt_settings(REDIS_FAILURE_POLICY="deny")
    assert_error(api.login(user.username), 503, "service_unavailable")
    assert_error(api.refresh(tokens["refresh"]), 503, "service_unavailable")


def test_throttle_never_makes_a_500_when_the_connection_raises(api, user, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("socket gone")  # a bare OSError, not wrapped by redis-py

    monkeypatch.setattr(clients, "sync", broken)
    api.login_ok(user.username)


def test_username_cache_key_holds_no_username(user, redis_conn, api):
    api.login(user.username, password="wrong")
    keys = [key.decode() for key in redis_conn.scan_iter(match=layout.counter_key("*"))]
    assert keys and not any(user.username in key for key in keys)
    assert PASSWORD not in "".join(keys)
