"""An attacker's and an on-call engineer's review of the operators' side, as tests: the
OpenTelemetry metrics, LOCAL_CACHE, `clearjwtsessions`, the revocation events and the
system checks.

Each test is one attack or one 3 a.m. failure: a client that tries to blow up the
metrics' cardinality, a meter that raises, a revocation that a cached entry tries to
outlive, a cleanup run against live sessions or with bad arguments, forged or garbled
pub/sub messages, settings of the wrong type. Bad input must get a 4xx answer (never a
500) and must never end or keep alive a session it should not. An attack that still works
is marked `xfail(strict=True)` with the reason "HOLE: ...".
"""
from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django.utils import timezone

from jwt_sessions import access, cleanup, counters, events, metrics, services, stats
from jwt_sessions.exceptions import AuthenticationError
from jwt_sessions.models import RevokeReason, Session
from jwt_sessions.redis import events as receiving
from jwt_sessions.redis import layout, local_cache, recovery
from jwt_sessions.redis.layout import EVENT_REVOKED, EVENT_ROTATED
from jwt_sessions.redis.local_cache import LocalCache
from jwt_sessions.redis.mirror import circuit
from jwt_sessions.redis.store import store
from tests.conftest import PASSWORD, assert_error, bearer, next_ip, url
from tests.polling import eventually
from tests.redis_servers import forget_redis_pools, point_cache_at
from tests.test_cleanup import recorded_forgets
from tests.test_events import keys_of_tokens
from tests.test_local_cache import (  # noqa: F401  (fixtures, and a helper)
    CACHE,
    cache_on,
    trusted,
    warm,
)
from tests.test_metrics import otel, provider  # noqa: F401  (fixtures)

# ruff: noqa: F811  (otel and trusted are the fixtures imported above)

pytestmark = pytest.mark.django_db(transaction=True)

KNOWN_ATTRIBUTES = {
    "reason": set(RevokeReason.values),
    "scope": {"jwt_sessions_login", "jwt_sessions_login_user", "jwt_sessions_refresh"},
    "result": {"hit", "miss"},
}


# ------------------------------------------------------------------ helpers
@pytest.fixture
def no_loopback(monkeypatch):
    """This process hears none of its own events: only direct forgets count."""
    monkeypatch.setattr(receiving, "_dispatch", lambda event: None)


def collected_attributes(reader) -> list[dict]:
    """The attributes of every data point of every jwt_sessions metric collected."""
    data = reader.get_metrics_data()
    return [dict(point.attributes)
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for metric in scope.metrics if metric.name.startswith("jwt_sessions.")
            for point in metric.data.data_points]


def status_of(access_token: str) -> int:
    from django.test import Client

    return Client().get("/api/whoami/", **bearer(access_token)).status_code


def raw_publish(redis_conn, data: bytes) -> None:
    redis_conn.publish(layout.events_channel(), data)


def jwt_messages(deploy: bool = True) -> list[checks.CheckMessage]:
    """The jwt_sessions messages of `manage.py check [--deploy]`; a crashing check fails
    the test (as it would end `manage.py check` with a traceback)."""
    try:
        found = checks.run_checks(include_deployment_checks=deploy)
    except Exception as exc:  # noqa: BLE001 - what we look for is any crash
        raise AssertionError(f"a system check crashed: {exc!r}") from exc
    return [message for message in found if (message.id or "").startswith("jwt_sessions.")]


def run_cleanup(*args: str) -> str:
    out = StringIO()
    call_command("clearjwtsessions", *args, stdout=out, stderr=out)
    return out.getvalue()


class _BrokenInstrument:
    """An instrument whose SDK or exporter throws on every value."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("metrics backend down")

    record = add


class _BrokenMeter:
    def create_counter(self, *args: Any, **kwargs: Any) -> _BrokenInstrument:
        return _BrokenInstrument()

    create_histogram = create_counter

    def create_observable_counter(self, *args: Any, **kwargs: Any) -> None:
        return None

    create_observable_gauge = create_observable_counter


class _BrokenProvider:
    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> _BrokenMeter:
        return _BrokenMeter()


@pytest.fixture
def broken_meter(api):
    """Every instrument raises; every access check is timed (so every one would raise).
    The API client sees a 500 as a response, as a real client would."""
    api.client.raise_request_exception = False
    assert metrics.configure(_BrokenProvider(), sample_every=1)
    yield
    metrics.configure()


# ------------------------------------------------------------------ metrics: cardinality
def test_metrics_no_client_string_becomes_an_attribute(api, user, otel, settings):
    """Random user agents, usernames, paths, tokens and failed logins: every attribute of
    every data point stays in the documented, closed sets."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_login": "2/min"}}
    ip = next_ip()
    for n in range(4):
        noise = uuid.uuid4().hex
        api.login(f"nobody-{noise}", password=noise, ua=f"Evil/{noise}", ip=ip)
        api.client.get(f"/api/whoami/{noise}/", HTTP_AUTHORIZATION=f"Bearer {noise}")
        api.whoami(f"{noise}.{noise}.{noise}")
        api.refresh(f"{noise}-{n}")
    good = api.login_ok(user.username, ua=f"Agent/{uuid.uuid4()}")
    api.logout(good["access"])
    attributes = collected_attributes(otel.reader)
    assert attributes, "nothing was recorded"
    for point in attributes:
        for key, value in point.items():
            assert value in KNOWN_ATTRIBUTES.get(key, set()), (key, value)


def test_metrics_refused_checks_are_timed_and_carry_no_token_data(api, tokens, otel):
    api.logout(tokens["access"])
    before = otel.histogram("jwt_sessions.access_check.duration").count
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    point = otel.histogram("jwt_sessions.access_check.duration")
    assert point.count == before + 1
    assert dict(point.attributes) == {}
    secrets_ = {tokens["access"], tokens["refresh"], tokens["session_id"]}
    for attributes in collected_attributes(otel.reader):
        assert not set(map(str, attributes.values())) & secrets_


def test_metrics_garbage_tokens_are_counted_as_access_checks(api, tokens, otel):
    assert api.whoami(tokens["access"]).status_code == 200
    before = otel.histogram("jwt_sessions.access_check.duration").count
    for token in ("not.a.token", tokens["access"][:-4] + "AAAA"):
        assert_error(api.whoami(token), 401, "token_invalid")
    assert otel.histogram("jwt_sessions.access_check.duration").count == before + 2


# ------------------------------------------------------------------ metrics: a broken meter
def test_metrics_a_raising_meter_does_not_fail_a_login(api, user, broken_meter):
    resp = api.login(user.username)
    assert resp.status_code == 200, resp.content


def test_metrics_a_raising_meter_does_not_fail_a_refresh(api, tokens, broken_meter):
    resp = api.refresh(tokens["refresh"])
    assert resp.status_code == 200, resp.content


def test_metrics_a_raising_meter_does_not_fail_a_request(api, tokens, broken_meter):
    assert api.whoami(tokens["access"]).status_code == 200


def test_metrics_a_raising_meter_keeps_a_refusal_a_401(api, tokens, user, broken_meter):
    store.forget([keys_of_tokens(tokens, user)])  # revoked by another process
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


def test_metrics_a_raising_meter_does_not_fail_a_logout_nor_skip_its_signal(
        api, tokens, broken_meter, signal_log):
    from jwt_sessions import signals

    revoked = signal_log(signals.session_revoked)
    resp = api.logout(tokens["access"])
    assert resp.status_code == 204, resp.content
    assert len(revoked) == 1


def test_metrics_a_raising_meter_keeps_a_throttle_a_429(api, user, broken_meter, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_login": "1/min"}}
    ip = next_ip()
    api.login(user.username, ip=ip)
    assert_error(api.login(user.username, ip=ip), 429, "throttled")


def test_metrics_a_raising_meter_does_not_drop_the_events_subscription(heard, broken_meter):
    """The receiver records each heartbeat's delivery lag: a meter that throws there must
    not cost the subscription (a gap empties every LOCAL_CACHE and re-checks every
    socket)."""
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:
        assert events.healthy(), "the events stopped being trusted"
        time.sleep(0.02)
    assert not [event for event in heard.events if event.kind == events.GAP]


def test_metrics_a_failing_observable_callback_costs_requests_nothing(api, tokens, otel,
                                                                    monkeypatch):
    def broken() -> tuple[int, int]:
        raise RuntimeError("broken")

    monkeypatch.setattr(local_cache, "lookups", broken)
    otel.reader.get_metrics_data()  # the SDK logs the callback's failure
    assert api.whoami(tokens["access"]).status_code == 200


# ------------------------------------------------------------------ metrics: the breaker
def test_metrics_circuit_gauge_is_one_after_a_real_outage(api, tokens, otel, through_proxy):
    assert api.whoami(tokens["access"]).status_code == 200
    assert otel.value("jwt_sessions.redis.circuit_open") == 0
    through_proxy.cut()
    assert api.whoami(tokens["access"]).status_code == 200  # the database answers
    assert otel.value("jwt_sessions.redis.circuit_open") == 1


def test_metrics_circuit_gauge_stays_one_until_redis_has_answered(otel, clock):
    circuit.trip()
    assert otel.value("jwt_sessions.redis.circuit_open") == 1
    clock.tick(timedelta(seconds=60))
    assert circuit.needs_replay
    assert otel.value("jwt_sessions.redis.circuit_open") == 1


# ------------------------------------------------------------------ local cache: revocations
def _logout(api, tokens, other, user) -> None:
    assert api.logout(tokens["access"]).status_code == 204


def _logout_all(api, tokens, other, user) -> None:
    assert api.logout_all(other["access"]).status_code == 204


def _delete_from_device_list(api, tokens, other, user) -> None:
    assert api.delete_session(other["access"], tokens["session_id"]).status_code == 204


def _revoke_endpoint(api, tokens, other, user) -> None:
    resp = api.client.post(url("revoke"), urlencode({"token": tokens["refresh"]}),
                           content_type="application/x-www-form-urlencoded",
                           REMOTE_ADDR=next_ip())
    assert resp.status_code == 200


def _admin(api, tokens, other, user) -> None:
    services.revoke_sessions(Session.objects.filter(pk=tokens["session_id"]),
                             RevokeReason.ADMIN)


def _password_change(api, tokens, other, user) -> None:
    user.set_password("a-whole-new-password-42")
    user.save()


def _deactivation(api, tokens, other, user) -> None:
    user.is_active = False
    user.save()


def _reuse_detected(api, tokens, other, user) -> str:
    """The session's current token is the cached one; its previous refresh comes back."""
    fresh = api.refresh_ok(tokens["refresh"])
    warm(api, fresh["access"])
    assert_error(api.refresh(tokens["refresh"]), 401, "refresh_token_reused")
    return fresh["access"]


def _shared_signal(api, tokens, other, user) -> None:
    assert services.revoke_session(tokens["session_id"], RevokeReason.SHARED_SIGNAL)


def _session_cap(api, tokens, other, user) -> None:
    Session.objects.filter(pk=other["session_id"]).update(last_activity_at=timezone.now())
    api.login_ok(user.username)  # over the cap of 2: the least recently active goes


REVOCATIONS = {
    "logout": (_logout, {}),
    "logout_all": (_logout_all, {}),
    "device_list": (_delete_from_device_list, {}),
    "rfc7009_revoke": (_revoke_endpoint, {}),
    "admin": (_admin, {}),
    "password_change": (_password_change, {}),
    "deactivation": (_deactivation, {}),
    "reuse_detected": (_reuse_detected, {"REFRESH_REUSE_GRACE": 0}),
    "shared_signal": (_shared_signal, {}),
    "session_cap": (_session_cap, {"MAX_SESSIONS_PER_USER": 2}),
}


@pytest.mark.parametrize("kind", list(REVOCATIONS))
def test_cache_refuses_every_kind_of_revocation_at_once_in_the_revoking_process(
        api, user, jwt_settings, no_loopback, kind):
    revoke, extra = REVOCATIONS[kind]
    jwt_settings(LOCAL_CACHE=CACHE, **extra)
    local_cache.current()
    assert events.wait_until_healthy(5)
    tokens, other = api.login_ok(user.username), api.login_ok(user.username)
    Session.objects.filter(pk=tokens["session_id"]).update(
        last_activity_at=timezone.now() - timedelta(hours=1))
    warm(api, tokens["access"])
    held = revoke(api, tokens, other, user) or tokens["access"]
    assert status_of(held) == 401


def test_cache_refuses_a_deleted_users_token_at_once_in_the_deleting_process(
        api, user, tokens, cache_on, no_loopback):
    warm(api, tokens["access"])
    user.delete()
    assert status_of(tokens["access"]) == 401


def test_cache_refuses_a_revocation_made_by_another_process(api, tokens, user, cache_on):
    """Another process's revocation reaches this one only through Redis: its keys go and
    its event is published."""
    warm(api, tokens["access"])
    store.forget([keys_of_tokens(tokens, user)])
    claims = access.decode_claims(tokens["access"])
    eventually(lambda: not cache_on.holds(claims.session_id, claims.jti), 2.0,
               "the other process's event to drop the entry", 0.002)
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


REVOKE_ELSEWHERE = """
import django, sys
django.setup()
from jwt_sessions import services
assert services.revoke_session(sys.argv[1])
print("revoked")
"""


@pytest.mark.skipif(not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL"),
                    reason="two processes share only a real Redis and database")
def test_cache_refuses_a_revocation_made_in_a_real_other_process(api, tokens, cache_on):
    import subprocess
    import sys

    from django.db import connection

    warm(api, tokens["access"])
    database = {**connection.settings_dict}
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": (f"postgres://{database['USER']}@{database['HOST']}:"
                            f"{database['PORT']}/{database['NAME']}")}
    done = subprocess.run([sys.executable, "-c", REVOKE_ELSEWHERE, tokens["session_id"]],
                          env=env, capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.stdout.strip() == "revoked", done.stderr[-2000:]
    eventually(lambda: status_of(tokens["access"]) == 401, 1.0,
               "the other process's revocation to reach this process's cache")


def test_cache_a_revocation_written_behind_the_orms_back_ends_with_clearjwtsessions(
        api, tokens, cache_on):
    warm(api, tokens["access"])
    Session.objects.filter(pk=tokens["session_id"]).update(
        revoked_at=timezone.now(), revoked_reason=RevokeReason.ADMIN)  # a shell, a script
    run_cleanup()
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


def test_cache_is_emptied_when_redis_restarts(api, user, settings, jwt_settings,
                                             redis_server):
    point_cache_at(settings, redis_server.url)
    try:
        jwt_settings(LOCAL_CACHE=CACHE)
        cache = local_cache.current()
        assert events.wait_until_healthy(5)
        tokens = api.login_ok(user.username)
        warm(api, tokens["access"])
        redis_server.stop()
        redis_server.start()  # empty: no key of the session any more
        eventually(lambda: len(cache) == 0, 5, "the restart's gap to empty the cache")
        assert api.whoami(tokens["access"]).status_code == 200  # the database answers
    finally:
        events.stop()
        forget_redis_pools()


def test_cache_garbage_tokens_take_no_entry_and_distinct_tokens_respect_max_entries(
        user, jwt_settings):
    jwt_settings(LOCAL_CACHE={"max_age": 30, "max_entries": 5})
    cache = local_cache.current()
    assert events.wait_until_healthy(5)
    for _ in range(12):
        access.authenticate_access(services.issue_tokens(user).access)
    assert len(cache) == 5
    valid = services.issue_tokens(user).access
    header, payload, _ = valid.split(".")
    garbage = [uuid.uuid4().hex, f"{header}.{payload}.{'A' * 43}", valid + "x", "." * 3,
               "Bearer " + valid, "\x00" * 10]
    for token in garbage * 20:
        with pytest.raises(AuthenticationError):
            access.authenticate_access(token)
    assert len(cache) == 5


def test_cache_holds_its_bounds_under_threads(trusted):
    cache = LocalCache(max_age=30, max_entries=20)
    ids = [uuid.uuid4() for _ in range(60)]
    failures: list[BaseException] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(3000):
                sid = rng.choice(ids)
                roll = rng.random()
                if roll < 0.5:
                    cache.keep(sid, "j", cache.version())
                elif roll < 0.9:
                    cache.holds(sid, "j")
                elif roll < 0.99:
                    cache.drop([sid])
                else:
                    cache.clear()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(cache) <= 20
    cache.drop(ids)
    assert not any(cache.holds(sid, "j") for sid in ids)


def test_cache_no_thread_accepts_a_token_after_its_revocation_returned(user, cache_on):
    pair = services.issue_tokens(user)
    access.authenticate_access(pair.access)
    stop = threading.Event()
    done_at: list[float] = []
    late: list[float] = []

    def check_forever() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                access.authenticate_access(pair.access)
            except AuthenticationError:
                continue
            if done_at and started > done_at[0]:
                late.append(started - done_at[0])

    threads = [threading.Thread(target=check_forever) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.05)
        assert services.revoke_session(pair.session_id)
        done_at.append(time.monotonic())
        time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not late, f"accepted {len(late)} time(s) after the revocation returned"


# ------------------------------------------------------------------ cleanup
def test_cleanup_keeps_live_sessions_and_their_redis_keys_even_with_zero_retention(
        api, user, jwt_settings, queries):
    jwt_settings(AUDIT_RETENTION=0)
    live = [api.login_ok(user.username) for _ in range(3)]
    assert "Deleted 0 session(s)." in run_cleanup("--batch-size", "1")
    assert Session.objects.active().count() == 3
    with queries() as q:
        assert all(api.whoami(t["access"]).status_code == 200 for t in live)
    assert len(q.captured_queries) == 0  # still answered by Redis


def test_cleanup_never_deletes_a_revocation_redis_has_not_seen(api, user, jwt_settings,
                                                              monkeypatch):
    jwt_settings(AUDIT_RETENTION=0)
    tokens = api.login_ok(user.username)
    monkeypatch.setattr(recovery, "replay_when_answered", lambda replay: None)
    circuit.trip()  # Redis unreachable
    assert services.revoke_session(tokens["session_id"])
    run_cleanup()
    circuit.down_until = 0.0  # Redis answers again; the replay is still owed
    assert status_of(tokens["access"]) == 401


def test_cleanup_dry_run_changes_nothing_in_redis_or_the_database(api, user, redis_conn,
                                                                 jwt_settings):
    jwt_settings(AUDIT_RETENTION=0)
    stale, missed, live = (api.login_ok(user.username) for _ in range(3))
    for tokens, ago in ((stale, timedelta(hours=1)), (missed, timedelta(0))):
        Session.objects.filter(pk=tokens["session_id"]).update(
            revoked_at=timezone.now() - ago, revoked_reason=RevokeReason.ADMIN)  # Redis missed it
    redis_conn.hset(layout.user_index_key(user.pk), "not-a-session", 1)

    def snapshot() -> tuple:
        keys = sorted(redis_conn.scan_iter("*"))
        return ([(key, redis_conn.dump(key)) for key in keys],
                sorted(Session.objects.values_list("pk", "revoked_at", "expires_at")))

    before = snapshot()
    out = run_cleanup("--dry-run")
    assert "Would delete 1 session(s)." in out
    assert snapshot() == before
    assert api.whoami(live["access"]).status_code == 200


def test_cleanup_prunes_garbage_index_members_and_keeps_the_live_one(api, user, redis_conn):
    live = api.login_ok(user.username)
    index = layout.user_index_key(user.pk)
    junk = ["not-a-session", "\u00e9" * 40, uuid.uuid4().hex, "0" * 500]
    redis_conn.hset(index, mapping=dict.fromkeys(junk, 1))
    assert "Pruned 4 orphaned" in run_cleanup()
    members = {m.decode() for m in redis_conn.hkeys(index)}
    assert members == {uuid.UUID(live["session_id"]).hex}
    assert api.whoami(live["access"]).status_code == 200


@pytest.mark.parametrize("args", [["--batch-size", "0"], ["--batch-size", "-5"],
                                  ["--batch-size", "ten"], ["--batch-size", "1e3"],
                                  ["--batch-size"], ["--no-such-option"]])
def test_cleanup_bad_arguments_are_a_command_error(tokens, args):
    with pytest.raises(CommandError):
        run_cleanup(*args)
    assert Session.objects.active().count() == 1


def test_cleanup_an_absurd_batch_size_is_a_command_error_not_a_traceback(tokens):
    try:
        run_cleanup("--batch-size", str(10 ** 30))
    except CommandError:
        pass
    except Exception as exc:  # noqa: BLE001 - what we look for is any other crash
        raise AssertionError(f"traceback: {exc!r}") from exc
    assert Session.objects.active().count() == 1


def test_cleanup_with_redis_down_says_so_and_still_deletes(aged_row, tokens):
    circuit.trip()
    out = run_cleanup()
    assert "Deleted 1 session(s)." in out and "Redis unavailable" in out
    assert not Session.objects.filter(pk=aged_row).exists()


@pytest.fixture
def aged_row(user, jwt_settings):
    """A session revoked three days ago, past a retention of one day."""
    jwt_settings(AUDIT_RETENTION=timedelta(days=1))
    pair = services.issue_tokens(user)
    services.revoke_session(pair.session_id)
    Session.objects.filter(pk=pair.session_id).update(
        revoked_at=timezone.now() - timedelta(days=3))
    return pair.session_id


def _stale_rows(user, count: int) -> None:
    for _ in range(count):
        pair = services.issue_tokens(user)
        Session.objects.filter(pk=pair.session_id).update(
            revoked_at=timezone.now() - timedelta(days=60), revoked_reason="admin")


def test_cleanup_queries_grow_with_batches_not_rows(user, queries):
    _stale_rows(user, 5)
    with queries() as small:
        assert cleanup.delete_stale(batch_size=5) == 5
    _stale_rows(user, 20)
    with queries() as large:
        assert cleanup.delete_stale(batch_size=5) == 20
    assert len(large.captured_queries) <= 4 * len(small.captured_queries) + 1


def test_cleanup_replays_revocations_in_batches(make_user, monkeypatch):
    for _ in range(12):  # one session per user: the prune's per-user trips stay small
        pair = services.issue_tokens(make_user())
        Session.objects.filter(pk=pair.session_id).update(
            revoked_at=timezone.now(), revoked_reason="admin")  # Redis never heard
    sizes = recorded_forgets(monkeypatch)
    run_cleanup("--batch-size", "5")
    assert sum(sizes) >= 12
    assert max(sizes) <= 5, sizes


def cleaning_beside(work: Callable[[], None], batch_size: int) -> None:
    """`work` on a thread of its own (its own database connection) while the cleanup
    runs over and over, until the work is done."""
    from django.db import connection

    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    while thread.is_alive():
        cleanup.clear_sessions(batch_size=batch_size)
    thread.join()


def test_cleanup_running_beside_logins_ends_no_new_session(api, user, jwt_settings):
    jwt_settings(AUDIT_RETENTION=0)
    fresh: list[dict] = []
    failures: list[BaseException] = []

    def log_in() -> None:
        try:
            for _ in range(4):
                fresh.append(services.issue_tokens(user).as_dict())
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    cleaning_beside(log_in, batch_size=2)
    cleanup.clear_sessions(batch_size=2)
    assert not failures
    assert len(fresh) == 4 and Session.objects.active().count() == 4
    assert all(status_of(pair["access"]) == 200 for pair in fresh)
    assert all(api.refresh(pair["refresh"]).status_code == 200 for pair in fresh)


def test_cleanup_running_beside_refreshes_breaks_no_rotation(api, tokens, jwt_settings):
    jwt_settings(AUDIT_RETENTION=0, REFRESH_REUSE_GRACE=0)
    latest = [tokens]
    failures: list[Any] = []

    def rotate() -> None:
        for _ in range(5):
            resp = api.refresh(latest[-1]["refresh"])
            if resp.status_code != 200:
                failures.append(resp.content)
                return
            latest.append(resp.json())

    cleaning_beside(rotate, batch_size=1)
    assert not failures
    assert len(latest) == 6
    assert status_of(latest[-1]["access"]) == 200
    assert Session.objects.get(pk=tokens["session_id"]).revoked_at is None


@pytest.mark.parametrize("interval", ["-1", "0", "nan", "inf", "-inf"])
def test_sendsecurityevents_a_bad_interval_is_a_command_error(monkeypatch, interval):
    from jwt_sessions.management.commands import sendsecurityevents

    class Stop(Exception):
        """The first sleep: the loop was entered."""

    def sleep(seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError("sleep length must be non-negative")
        raise Stop

    monkeypatch.setattr(sendsecurityevents, "time", type("T", (), {"sleep": staticmethod(
        sleep)}))
    try:
        call_command("sendsecurityevents", "--forever", "--interval", interval,
                     stdout=StringIO())
    except CommandError:
        return
    except Exception as exc:  # noqa: BLE001 - what we look for is any other outcome
        raise AssertionError(f"no CommandError: {exc!r}") from exc
    raise AssertionError("accepted")


# ------------------------------------------------------------------ the admin at 3 a.m.
def test_admin_lists_and_revokes_sessions_while_redis_is_down(admin_client, tokens):
    circuit.trip()
    resp = admin_client.get("/admin/jwt_sessions/session/")
    assert resp.status_code == 200
    resp = admin_client.post("/admin/jwt_sessions/session/", {
        "action": "revoke_sessions", "_selected_action": [tokens["session_id"]],
        "post": "yes"})
    assert resp.status_code in (200, 302)
    assert Session.objects.get(pk=tokens["session_id"]).revoked_at is not None
    recovery.stop()  # the request below, not the prober, finds Redis back
    circuit.down_until = 0.0  # Redis answers again
    assert status_of(tokens["access"]) == 401


def test_admin_session_list_survives_a_garbled_counter(admin_client, redis_conn):
    counters.take_all()
    redis_conn.hset(layout.stats_key(), "db_fallbacks", "garbage")
    admin_client.raise_request_exception = False
    assert admin_client.get("/admin/jwt_sessions/session/").status_code == 200


# ------------------------------------------------------------------ events: forged messages
GARBAGE = {
    "empty": b"",
    "one byte": b"\x00",
    "kind only": EVENT_REVOKED,
    "unknown kind": b"z" + uuid.uuid4().bytes + b"\x00",
    "truncated record": EVENT_REVOKED + b"\x01" * 10,
    "truncated jti": EVENT_ROTATED + uuid.uuid4().bytes + b"\xff" + b"j",
    "undecodable jti": EVENT_ROTATED + uuid.uuid4().bytes + b"\x02\xff\xfe",
    "random bytes": bytes(random.Random(7).randrange(256) for _ in range(4096)),
    "huge": EVENT_REVOKED + b"\x00" * (1 << 20),
    "text": b"revoked everything",
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_events_garbage_never_stops_the_receiver(name, redis_conn, heard, tokens, user):
    raw_publish(redis_conn, GARBAGE[name])
    store.forget([keys_of_tokens(tokens, user)])  # a real revocation after it
    heard.wait_for(lambda e: e.kind == events.REVOKED
                   and e.session_id == uuid.UUID(tokens["session_id"]))
    assert events.healthy()
    assert not [e for e in heard.events if e.kind == events.GAP]


def test_events_a_flood_of_forged_revocations_refuses_no_live_token(api, tokens, cache_on,
                                                                   redis_conn, heard):
    warm(api, tokens["access"])
    live = uuid.UUID(tokens["session_id"])
    records = b"".join(layout.event_record(uuid.uuid4()) for _ in range(3000))
    raw_publish(redis_conn, EVENT_REVOKED + records + layout.event_record(live))
    heard.wait_for(lambda e: e.session_id == live)
    assert len(cache_on._dropped) <= local_cache._REMEMBERED_DROPS
    assert api.whoami(tokens["access"]).status_code == 200  # one lookup
    eventually(lambda: api.whoami(tokens["access"]).status_code == 200
               and local_cache.current().holds(live, access.decode_claims(
                   tokens["access"]).jti), 2, "the live token to be cached again")
    assert events.healthy()


def test_events_forged_rotation_naming_the_live_jti_costs_one_lookup(api, tokens, cache_on,
                                                                    redis_conn, heard):
    warm(api, tokens["access"])
    claims = access.decode_claims(tokens["access"])
    raw_publish(redis_conn, EVENT_ROTATED + layout.event_record(claims.session_id, claims.jti))
    heard.wait_for(lambda e: e.kind == events.ROTATED)
    assert api.whoami(tokens["access"]).status_code == 200
    assert api.whoami(tokens["access"]).status_code == 200


def test_events_garbage_on_a_heartbeat_channel_proves_nothing_and_breaks_nothing(
        redis_conn, heard):
    receiver = receiving._receiver
    assert receiver is not None
    for junk in (b"", b"x" * 16, b"\x00" * 100_000, uuid.uuid4().bytes):
        redis_conn.publish(layout.heartbeat_channel(receiver.id), junk)
    time.sleep(0.3)
    assert receiving._receiver is receiver and receiver.is_alive() and events.healthy()
    assert not [e for e in heard.events if e.kind == events.GAP]


def test_events_a_raising_consumer_starves_no_other(redis_conn, heard, tokens, user):
    def broken(event) -> None:
        raise RuntimeError("consumer bug")

    unsubscribe = events.subscribe(broken)
    try:
        store.forget([keys_of_tokens(tokens, user)])
        heard.wait_for(lambda e: e.kind == events.REVOKED)
        assert events.healthy()
    finally:
        unsubscribe()


def test_events_the_receiver_comes_back_after_redis_restarts(settings, redis_server):
    from tests.event_consumers import Heard

    point_cache_at(settings, redis_server.url)
    consumer = Heard()
    unsubscribe = events.subscribe(consumer)
    try:
        assert events.wait_until_healthy(5)
        consumer.events.clear()
        redis_server.stop()
        consumer.wait_for(lambda e: e.kind == events.GAP)
        assert not events.healthy()
        redis_server.start()
        assert events.wait_until_healthy(8)
        consumer.wait_for(lambda e: e.kind == events.GAP, count=2)  # and on resubscribing
    finally:
        unsubscribe()
        events.stop()
        forget_redis_pools()


def test_events_the_receiver_comes_back_after_its_connection_is_killed(settings,
                                                                      redis_server, heard):
    point_cache_at(settings, redis_server.url)
    try:
        events.stop()
        assert events.wait_until_healthy(5)
        heard.events.clear()
        redis_server.client().client_kill_filter(_type="pubsub")
        heard.wait_for(lambda e: e.kind == events.GAP)
        assert events.wait_until_healthy(5)
    finally:
        events.stop()
        forget_redis_pools()


# ------------------------------------------------------------------ stats and counters
def test_stats_a_garbled_counter_does_not_take_the_access_check_down(
        api, tokens, redis_conn, jwt_settings, monkeypatch):
    jwt_settings(REDIS_FAILURE_POLICY="deny")
    redis_conn.hset(layout.stats_key(), "redis_hits", "garbage")
    monkeypatch.setattr(counters, "_last_flush", 0.0)
    counters.record("redis_hits")
    assert api.whoami(tokens["access"]).status_code == 200
    assert not circuit.is_open()


def test_stats_snapshot_survives_a_garbled_counter(redis_conn):
    counters.take_all()  # nothing of ours to flush first
    redis_conn.hset(layout.stats_key(), "refreshes", "garbage")
    try:
        counts = stats.snapshot()
    except ValueError as exc:
        raise AssertionError(f"snapshot raised {exc!r}") from exc
    assert set(counts) == set(stats.COUNTERS)


def test_stats_snapshot_with_redis_down_keeps_this_processes_counts():
    counters.record("refreshes", 3)
    circuit.trip()
    assert stats.snapshot()["refreshes"] >= 3
    circuit.reset()
    assert stats.snapshot()["refreshes"] >= 3  # given back, then flushed


# ------------------------------------------------------------------ bad input with it all on
@pytest.mark.parametrize("header", [
    "Bearer " + "a" * 20_000, "Bearer a.b.c", "Bearer \u00e9\u00e9\u00e9", "Bearer",
    "Bearer eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0.", "Basic Zm9vOmJhcg==",
    "Bearer " + ".".join(["eyJ9"] * 3),
])
def test_bad_authorization_headers_are_a_401_json_with_cache_and_metrics_on(
        api, tokens, cache_on, otel, header):
    warm(api, tokens["access"])
    resp = api.client.get("/api/whoami/", HTTP_AUTHORIZATION=header)
    assert resp.status_code in (401, 403), resp.content
    assert resp.json()["detail"]
    assert len(cache_on) == 1
    assert api.whoami(tokens["access"]).status_code == 200


# ------------------------------------------------------------------ system checks
def _ids(messages) -> set[str]:
    return {message.id for message in messages}


ODD_SETTINGS = {
    "lifetime beyond timedelta": {"ACCESS_TOKEN_LIFETIME": 10 ** 20},
    "infinite retention": {"AUDIT_RETENTION": float("inf")},
    "nan heartbeat": {"EVENTS_HEARTBEAT": float("nan")},
    "list cache alias": {"CACHE_ALIAS": ["default"]},
    "nan local cache age": {"LOCAL_CACHE": {"max_age": float("nan")}},
    "list failure policy": {"REDIS_FAILURE_POLICY": ["deny"]},
    "string rounds": {"BCRYPT_ROUNDS": "12"},
    "string lifetime": {"REFRESH_TOKEN_LIFETIME": "30 days"},
    "list samesite": {"REFRESH_COOKIE": {"samesite": ["Lax"]}},
    "list cap policy": {"MAX_SESSIONS_POLICY": ["refuse"]},
    "int signing key": {"SIGNING_KEY": 1234567890},
    "list algorithm": {"ALGORITHM": ["HS256"]},
    "list additional keys": {"ADDITIONAL_VERIFYING_KEYS": ["k"]},
    "string fallbacks": {"MAX_CONCURRENT_DB_FALLBACKS": "many"},
    "int claims hook": {"CLAIMS_HOOK": 42},
    "list local cache": {"LOCAL_CACHE": [30]},
}


@pytest.mark.parametrize("name", list(ODD_SETTINGS))
def test_checks_odd_settings_are_reported_never_crash(settings, name):
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, **ODD_SETTINGS[name]}
    errors = [m for m in jwt_messages(deploy=False) if m.level >= checks.ERROR]
    assert errors, "no jwt_sessions error reported"


def test_checks_a_malformed_redis_location_does_not_crash_check_deploy(settings):
    settings.CACHES = {"default": {**settings.CACHES["default"],
                                   "LOCATION": "redis://[::1:6379/0"}}
    jwt_messages()


def test_checks_a_cache_that_is_not_redis_is_reported(settings):
    settings.CACHES = {**settings.CACHES, "local": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    baseline = _ids(jwt_messages())
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "CACHE_ALIAS": "local"}
    assert _ids(jwt_messages()) - baseline, "nothing says the cache is not Redis"


@pytest.mark.parametrize("key", ["x" * 64, "django-insecure-" + "k3y" * 16])
def test_checks_deploy_warns_of_a_weak_signing_key(settings, key):
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "SIGNING_KEY": key}
    assert {m.id for m in jwt_messages()} & {"jwt_sessions.W005", "jwt_sessions.W007"}, \
        "no warning about the signing key"


@pytest.mark.parametrize("how", ["same string", "a fallback", "as bytes"])
def test_checks_deploy_warns_of_signing_with_secret_key(settings, how):
    secret = settings.SECRET_KEY
    if how == "a fallback":
        settings.SECRET_KEY_FALLBACKS = [secret]
        settings.SECRET_KEY = "a-new-and-different-" + "s" * 48
    key = secret.encode() if how == "as bytes" else secret
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "SIGNING_KEY": key}
    assert "jwt_sessions.W005" in _ids(jwt_messages())


def test_checks_deploy_warns_of_an_insecure_refresh_cookie(settings):
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "REFRESH_COOKIE": {"secure": False}}
    assert "jwt_sessions.W002" in _ids(jwt_messages())


def test_checks_deploy_warns_of_plain_redis_to_another_host(settings):
    settings.CACHES = {"default": {**settings.CACHES["default"],
                                   "LOCATION": "redis://10.1.2.3:6379/0"}}
    assert {"jwt_sessions.W003", "jwt_sessions.W004"} <= _ids(jwt_messages())


@pytest.mark.parametrize("config, code", [
    ({"max_age": timedelta(hours=1)}, "jwt_sessions.E026"),
    ({"max_age": 0}, "jwt_sessions.E025"),
    ({"max_entries": 0}, "jwt_sessions.E027"),
    ({"max_entries": True}, "jwt_sessions.E027"),
    ({"ttl": 5}, "jwt_sessions.E024"),
])
def test_checks_an_unsafe_local_cache_is_an_error(settings, config, code):
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "LOCAL_CACHE": config}
    assert code in _ids(jwt_messages(deploy=False))


def test_checks_a_negative_retention_is_an_error_so_cleanup_cannot_eat_live_sessions(
        settings):
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "AUDIT_RETENTION": timedelta(days=-1)}
    assert "jwt_sessions.E002" in _ids(jwt_messages(deploy=False))


def test_without_opentelemetry_no_request_imports_it():
    """The lazy contract, seen from a process that serves a login and a request."""
    import subprocess
    import sys
    from pathlib import Path

    script = "\n".join([
        "import sys", 'sys.modules["opentelemetry"] = None', "import django",
        "django.setup()", "from django.test.utils import setup_test_environment",
        "from django.test.runner import DiscoverRunner",
        "setup_test_environment()", "runner = DiscoverRunner(verbosity=0)",
        "old = runner.setup_databases()",
        "from django.contrib.auth import get_user_model",
        f"get_user_model().objects.create_user('u', password={PASSWORD!r})",
        "from tests.conftest import Api", "api = Api()",
        "access = api.login_ok('u')['access']",
        "assert api.whoami(access).status_code == 200",
        "assert not [n for n, m in sys.modules.items() if n.startswith('opentelemetry') "
        "and m is not None]",
        "runner.teardown_databases(old)", "print('ok')"])
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.strip().endswith("ok"), done.stderr[-2000:]
