"""OpenTelemetry metrics, read back through the SDK's in-memory reader: what each flow
counts, the access check's duration, the events' delivery lag, the local cache, the
circuit breaker; and nothing at all (not even a wrapper) without OpenTelemetry."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django_redis import get_redis_connection
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from jwt_sessions import api as jwt_api
from jwt_sessions import events, metrics
from jwt_sessions.exceptions import TokenInvalid
from jwt_sessions.redis.mirror import circuit
from jwt_sessions.redis.store import astore
from tests.conftest import assert_error, next_ip

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[1]


class Metrics:
    """The values an InMemoryMetricReader collected, by instrument and attributes."""

    def __init__(self, reader: InMemoryMetricReader) -> None:
        self.reader = reader

    def points(self, name: str) -> list:
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        return list(metric.data.data_points)
        return []

    def value(self, name: str, **attributes: str) -> int:
        """A counter's or gauge's value for these attributes (0 if never recorded)."""
        return sum(point.value for point in self.points(name)
                   if dict(point.attributes) == attributes)

    def histogram(self, name: str):
        (point,) = self.points(name)
        return point


@pytest.fixture
def provider():
    """A MeterProvider with an in-memory reader: (provider, Metrics)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider, Metrics(reader)
    metrics.configure()  # back to the global (no-op) provider, default sampling
    provider.shutdown()


@pytest.fixture
def otel(provider):
    """Every access check timed, for exact counts."""
    assert metrics.configure(provider[0], sample_every=1)
    return provider[1]


# ------------------------------------------------------------------ counters
def test_logins_refreshes_and_revocations_by_reason(api, user, otel):
    first, second = api.login_ok(user.username), api.login_ok(user.username)
    api.refresh_ok(first["refresh"])
    api.logout(second["access"])
    assert otel.value("jwt_sessions.logins") == 2
    assert otel.value("jwt_sessions.refreshes") == 1
    assert otel.value("jwt_sessions.revocations", reason="logout") == 1
    assert otel.value("jwt_sessions.revocations", reason="admin") == 0


def test_reuse_detection_counts_and_revokes(api, tokens, otel, jwt_settings):
    jwt_settings(REFRESH_REUSE_GRACE=0)
    api.refresh_ok(tokens["refresh"])
    assert_error(api.refresh(tokens["refresh"]), 401, "refresh_token_reused")
    assert otel.value("jwt_sessions.reuse_detections") == 1
    assert otel.value("jwt_sessions.revocations", reason="reuse_detected") == 1


def test_throttled_requests_by_scope(api, user, otel, settings, clock):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_login": "1/min"}}
    ip = next_ip()
    api.login_ok(user.username, ip=ip)
    assert_error(api.login(user.username, ip=ip), 429, "throttled")
    assert otel.value("jwt_sessions.throttled_requests", scope="jwt_sessions_login") == 1


def test_database_fallbacks(api, tokens, otel):
    get_redis_connection("default").flushdb()  # Redis forgot: the database answers
    assert api.whoami(tokens["access"]).status_code == 200
    assert otel.value("jwt_sessions.db_fallbacks") == 1


# ------------------------------------------------------------------ the access check
def test_access_check_duration_counts_every_check_sync_and_async(api, tokens, otel):
    before = otel.value("jwt_sessions.access_checks")  # a process-wide count
    for _ in range(3):
        assert api.whoami(tokens["access"]).status_code == 200

    async def check_async():
        try:
            await jwt_api.aauthenticate(tokens["access"])
        finally:
            await astore.aclose()

    async_to_sync(check_async)()
    point = otel.histogram("jwt_sessions.access_check.duration")
    assert point.count == 4
    assert otel.value("jwt_sessions.access_checks") - before == 4
    assert 0 < point.sum < 4  # seconds
    assert point.explicit_bounds[0] == metrics.DURATION_BUCKETS[0]


def test_a_refused_check_is_timed_too(api, tokens, otel):
    api.logout(tokens["access"])  # one check, then the revocation
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    assert otel.histogram("jwt_sessions.access_check.duration").count == 2


def test_one_check_in_sample_every_is_timed_and_every_check_counted(api, tokens, provider):
    meter_provider, otel = provider
    metrics.configure(meter_provider, sample_every=4)
    before = otel.value("jwt_sessions.access_checks")
    for _ in range(8):
        assert api.whoami(tokens["access"]).status_code == 200
    assert otel.histogram("jwt_sessions.access_check.duration").count == 2
    assert 4 <= otel.value("jwt_sessions.access_checks") - before <= 12  # within 4


def test_garbage_tokens_at_the_async_door_are_counted_and_timed(api, tokens, otel):
    assert api.whoami(tokens["access"]).status_code == 200  # timed: the count is exact
    before = otel.value("jwt_sessions.access_checks")

    async def check_async():
        try:
            await jwt_api.aauthenticate(tokens["access"])
            for token in ("not.a.token", tokens["access"][:-4] + "AAAA"):
                with pytest.raises(TokenInvalid):
                    await jwt_api.aauthenticate(token)
        finally:
            await astore.aclose()

    async_to_sync(check_async)()
    assert otel.histogram("jwt_sessions.access_check.duration").count == 4
    assert otel.value("jwt_sessions.access_checks") - before == 3


def test_a_door_check_is_timed_once_not_twice(api, tokens, otel):
    """The door times its whole check; the check it calls inside is not timed again."""
    assert api.whoami(tokens["access"]).status_code == 200
    assert otel.histogram("jwt_sessions.access_check.duration").count == 1


@pytest.mark.parametrize("every", [0, -1, 1.5, "8"])
def test_sample_every_must_be_a_positive_integer(every):
    with pytest.raises(ValueError, match="sample_every"):
        metrics.configure(sample_every=every)


# ------------------------------------------------------------------ observed
def test_local_cache_hits_and_misses(api, tokens, otel, jwt_settings):
    jwt_settings(LOCAL_CACHE={})
    assert api.whoami(tokens["access"]).status_code == 200  # a miss; starts the receiver
    assert events.wait_until_healthy(5)
    for _ in range(3):
        assert api.whoami(tokens["access"]).status_code == 200
    hits = otel.value("jwt_sessions.local_cache.lookups", result="hit")
    misses = otel.value("jwt_sessions.local_cache.lookups", result="miss")
    assert hits >= 1 and misses >= 1 and hits + misses == 4


def test_circuit_breaker_state(otel):
    assert otel.value("jwt_sessions.redis.circuit_open") == 0
    circuit.trip()
    assert otel.value("jwt_sessions.redis.circuit_open") == 1
    circuit.reset()
    assert otel.value("jwt_sessions.redis.circuit_open") == 0


def test_circuit_gauge_falls_to_zero_once_redis_answered_and_the_replay_is_done(
        api, tokens, otel, clock):
    circuit.trip()
    clock.tick(timedelta(seconds=60))  # past REDIS_RETRY_INTERVAL: the next call tries
    assert otel.value("jwt_sessions.redis.circuit_open") == 1
    assert api.whoami(tokens["access"]).status_code == 200  # Redis answers; replayed
    assert not circuit.needs_replay
    assert otel.value("jwt_sessions.redis.circuit_open") == 0


def test_events_delivery_lag(otel):
    unsubscribe = events.subscribe(lambda event: None)
    try:
        assert events.wait_until_healthy(5)
    finally:
        unsubscribe()
    point = otel.histogram("jwt_sessions.events.delivery_lag")
    assert point.count >= 1 and 0 <= point.sum / point.count < 1


# ------------------------------------------------------------------ a meter that raises
def raising_provider(failure: Exception) -> mock.Mock:
    """A provider whose every instrument raises `failure` on every value."""
    instrument = mock.Mock(**{"add.side_effect": failure, "record.side_effect": failure})
    meter = mock.Mock(**{"create_counter.return_value": instrument,
                         "create_histogram.return_value": instrument})
    return mock.Mock(**{"get_meter.return_value": meter})


@pytest.fixture
def raising_meter(monkeypatch):
    monkeypatch.setitem(metrics._last_warning, "at", -metrics.FAILURE_LOG_INTERVAL)
    assert metrics.configure(raising_provider(RuntimeError("exporter down")),
                             sample_every=1)
    yield
    metrics.configure()


def test_a_raising_meter_warns_once_then_only_at_debug(api, tokens, raising_meter, caplog):
    caplog.set_level(logging.DEBUG, logger="jwt_sessions")
    for _ in range(3):
        assert api.whoami(tokens["access"]).status_code == 200
    failures = [r for r in caplog.records if r.getMessage().startswith("Recording a metric")]
    assert [r.levelno for r in failures].count(logging.WARNING) == 1
    assert len(failures) >= 3 and failures[0].levelno == logging.WARNING


def test_a_raising_meter_does_not_fail_the_async_door(tokens, raising_meter):
    async def check_async():
        try:
            return await jwt_api.aauthenticate(tokens["access"])
        finally:
            await astore.aclose()

    assert str(async_to_sync(check_async)().session_id) == tokens["session_id"]


def test_a_provider_that_raises_when_asked_for_a_meter_costs_nothing(monkeypatch):
    broken = mock.Mock(**{"get_meter.side_effect": RuntimeError("no meter")})
    monkeypatch.setattr(metrics.otel, "get_meter_provider", lambda: broken)
    monkeypatch.setattr(metrics, "_instruments", None)
    metrics.login()
    metrics.revoked("logout", 1)
    metrics.event_delivered(0.01)
    assert metrics._instruments is None


# ------------------------------------------------------------------ without OpenTelemetry
WITHOUT_OTEL = """
import sys
sys.modules["opentelemetry"] = None  # as if not installed: any import of it fails
import django
django.setup()
from jwt_sessions import access, metrics
assert metrics.otel is None
assert not metrics.configure()
assert not hasattr(access.authenticate_access, "__wrapped__")  # not even a wrapper
assert not hasattr(access.aauthenticate_access, "__wrapped__")
from jwt_sessions.dpop import doors
assert not hasattr(doors.authenticate, "__wrapped__")
assert not hasattr(doors.aauthenticate, "__wrapped__")
metrics.login(); metrics.revoked("logout", 1); metrics.throttled("x")
metrics.stat_recorded("refreshes", 1); metrics.event_delivered(0.1)
assert not any(name.startswith("opentelemetry") and module is not None
               for name, module in sys.modules.items())
print("ok")
"""


def test_without_opentelemetry_nothing_is_wrapped_or_imported():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run([sys.executable, "-c", WITHOUT_OTEL], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_with_opentelemetry_the_check_is_wrapped():
    from jwt_sessions import access

    assert access.authenticate_access.__wrapped__  # type: ignore[attr-defined]
