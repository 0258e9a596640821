"""Metrics through the OpenTelemetry metrics API, for any OTel exporter (Prometheus, OTLP...).

Optional: `pip install 'jwt_sessions[otel]'` installs the API; the project installs the
SDK and an exporter and sets its meter provider (docs/metrics.md). Without the API every
function here returns at once, and the access check is not even wrapped: no dependency
and no cost. With the API but no provider set, the API's own no-op meter takes the calls
until one is set.

The places that count make one thin call each; what is already counted elsewhere (the
circuit breaker's state, the local cache's hits and misses) is read by observable
instruments when the exporter collects, so it costs the request path nothing.

Recording never fails a flow: an SDK or provider that raises (the API promises not to, a
broken exporter or custom provider can) is logged, at warning at most once a minute, and
the login, refresh or check goes on.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

otel: Any
try:
    from opentelemetry import metrics as otel
except ImportError:  # the optional extra is not installed
    otel = None

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("jwt_sessions")

METER_NAME = "jwt_sessions"
# Seconds: an access check takes tens of microseconds (LOCAL_CACHE) to a few milliseconds
# (a database fallback); OTel's default buckets (0 to 10,000) suit milliseconds.
DURATION_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                    0.05, 0.1, 0.25, 0.5, 1.0)
# A failing meter is logged at warning at most once in this many seconds (debug otherwise).
FAILURE_LOG_INTERVAL = 60.0
# One access check in this many is timed into the histogram (see timed_access_check).
SAMPLE_EVERY = 16
# The `stats` counters that are OTel counters too: {stat: (instrument, description)}
# (Redis hits and misses are per-check figures the access-check histogram covers).
_STAT_COUNTERS = {
    "refreshes": ("refreshes", "Token refreshes."),
    "reuse_detected": ("reuse_detections",
                       "Refresh token reuse detected (the session was revoked)."),
    "db_fallbacks": ("db_fallbacks", "Checks answered by the database because Redis "
                                     "could not."),
    "redis_errors": ("redis_errors", "Redis calls that failed."),
}


class _Instruments:
    """The instruments of one meter."""

    def __init__(self, meter: Any) -> None:
        def counter(name: str, unit: str, description: str) -> Any:
            return meter.create_counter(f"jwt_sessions.{name}", unit, description)

        self.logins = counter("logins", "{session}", "Sessions opened by a login.")
        self.revocations = counter("revocations", "{session}",
                                   "Sessions revoked, by reason.")
        self.throttled = counter("throttled_requests", "{request}",
                                 "Requests refused by a throttle, by scope.")
        self.stats = {stat: counter(name, "{event}", description)
                      for stat, (name, description) in _STAT_COUNTERS.items()}
        meter.create_observable_counter(
            "jwt_sessions.access_checks", [_access_checks], "{check}",
            "Access tokens checked (to within the sampling interval).")
        self.access_check = meter.create_histogram(
            "jwt_sessions.access_check.duration", "s",
            "How long the check of an access token took (JWT, cache, Redis, database), "
            "for one check in `sample_every`.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self.event_lag = meter.create_histogram(
            "jwt_sessions.events.delivery_lag", "s",
            "Publish-to-delivery time of revocation events (this process's heartbeats "
            "through the same subscription).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        meter.create_observable_counter(
            "jwt_sessions.local_cache.lookups", [_local_cache_lookups], "{lookup}",
            "LOCAL_CACHE lookups, by result (hit or miss).")
        meter.create_observable_gauge(
            "jwt_sessions.redis.circuit_open", [_circuit_state], "1",
            "1 while the circuit breaker keeps this process off Redis or its replay of "
            "the revocations missed meanwhile is still owed, else 0.")


_instruments: _Instruments | None = None
# Access checks are numbered from 0 (next() is atomic: no lock, no number twice); the
# latest timed one's number tells how many there were, to within `every`.
_sequence = itertools.count()
_sampling = {"every": SAMPLE_EVERY, "latest": -1, "reported": 0}
_last_warning = {"at": -FAILURE_LOG_INTERVAL}


def configure(meter_provider: Any = None, sample_every: int = SAMPLE_EVERY) -> bool:
    """Create the instruments on `meter_provider` (default: OTel's global provider, which
    is also what the first recorded value uses); time one access check in `sample_every`
    (1: every check). False when OTel is not installed."""
    global _instruments
    if otel is None:
        return False
    if not isinstance(sample_every, int) or sample_every < 1:
        raise ValueError("sample_every must be a positive integer")
    _sampling["every"] = sample_every
    provider = meter_provider or otel.get_meter_provider()
    _instruments = _Instruments(provider.get_meter(METER_NAME))
    return True


def _active() -> _Instruments | None:
    if _instruments is None and otel is not None:
        _safely(configure)
    return _instruments


def _safely(record: Callable[..., Any], *args: Any) -> None:
    """`record(*args)`, whatever the meter does: a metric is never worth a failed flow."""
    try:
        record(*args)
    except Exception as exc:  # noqa: BLE001 - any SDK or exporter failure
        _failed(exc)


def _failed(exc: Exception) -> None:
    """Say that the meter failed, without a log line per request."""
    now = time.monotonic()
    if now - _last_warning["at"] < FAILURE_LOG_INTERVAL:
        logger.debug("Recording a metric failed: %r", exc)
        return
    _last_warning["at"] = now
    logger.warning("Recording a metric failed (the flow went on; logged at most once "
                   "every %d s): %r", FAILURE_LOG_INTERVAL, exc, exc_info=exc)


# ------------------------------------------------------------------ the thin calls
def login() -> None:
    instruments = _active()
    if instruments is not None:
        _safely(instruments.logins.add, 1)


def revoked(reason: str, count: int) -> None:
    instruments = _active()
    if instruments is not None and count:
        _safely(instruments.revocations.add, count, {"reason": reason})


def throttled(scope: str) -> None:
    instruments = _active()
    if instruments is not None:
        _safely(instruments.throttled.add, 1, {"scope": scope})


def stat_recorded(name: str, amount: int) -> None:
    """A `stats` counter moved: the same count as an OTel counter, where there is one."""
    if name not in _STAT_COUNTERS:
        return
    instruments = _active()
    if instruments is not None:
        _safely(instruments.stats[name].add, amount)


def event_delivered(lag_seconds: float) -> None:
    instruments = _active()
    if instruments is not None:
        _safely(instruments.event_lag.record, lag_seconds)


def timed_access_check(check: F) -> F:
    """Time one call in `sample_every` of an access check (sync or async) into the
    duration histogram; without OTel, the check itself, unwrapped.

    Sampled because one OTel SDK record costs several microseconds on a request path (a
    fifth of a check answered by Redis; benchmarks/METRICS_RESULTS.md): timing every
    check would cost more than the 5 % the metrics may cost. Every check still counts in
    `access_checks`, which reads the checks' sequence number at collection time.
    """
    if otel is None:
        return check
    clock = time.perf_counter
    if inspect.iscoroutinefunction(check):
        @functools.wraps(check)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            number = next(_sequence)
            if number % _sampling["every"]:
                return await check(*args, **kwargs)
            started = clock()
            try:
                return await check(*args, **kwargs)
            finally:
                _record_check(number, clock() - started)

        return cast(F, timed_async)

    @functools.wraps(check)
    def timed(*args: Any, **kwargs: Any) -> Any:
        number = next(_sequence)
        if number % _sampling["every"]:
            return check(*args, **kwargs)
        started = clock()
        try:
            return check(*args, **kwargs)
        finally:
            _record_check(number, clock() - started)

    return cast(F, timed)


def _record_check(number: int, seconds: float) -> None:
    _sampling["latest"] = number
    instruments = _active()
    if instruments is not None:
        _safely(instruments.access_check.record, seconds)


# ------------------------------------------------------------------ observed at collection
def _local_cache_lookups(options: Any) -> Iterable[Any]:
    from .redis import local_cache

    hits, misses = local_cache.lookups()
    return [otel.Observation(hits, {"result": "hit"}),
            otel.Observation(misses, {"result": "miss"})]


def _access_checks(options: Any) -> Iterable[Any]:
    # Never lower than last time: two threads may store their numbers out of order.
    _sampling["reported"] = max(_sampling["reported"], _sampling["latest"] + 1)
    return [otel.Observation(_sampling["reported"])]


def _circuit_state(options: Any) -> Iterable[Any]:
    from .redis.mirror import circuit

    # Open until Redis has answered and the revocations missed meanwhile are replayed.
    return [otel.Observation(1 if circuit.is_open() or circuit.needs_replay else 0)]
