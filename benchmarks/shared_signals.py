"""Shared Signals benchmarks, one run: the outbox's cost per revocation, SET delivery
latency to a receiver in another process (A's revocation committed -> B acted), and
introspection beside the same token's own access check: in-process (CPU per request, the
quieter figure) and over HTTP (the target).

    python benchmarks/shared_signals.py [--quick] [--output benchmarks/SHARED_SIGNALS_RESULTS.md]

The receiver B is a uvicorn process of the test suite's site (tests/ssf_settings.py) with
its own SQLite file and its own redis-server (needs redis-server on PATH); the
introspection rows need wrk and gunicorn (benchmarks/requirements.txt). Uses Redis db 5
(`BENCH_REDIS_URL`), which it FLUSHDBs.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import run as bench  # noqa: E402  (sets the benchmark site's settings)

MEASURE_STREAMS = (0, 1, 5)


def _set_keys() -> dict:
    from tests.ssf_helpers import ISSUER, SET_PRIVATE, SET_PUBLIC

    return {"ISSUER": ISSUER, "SIGNING_KEY": SET_PRIVATE, "VERIFYING_KEY": SET_PUBLIC,
            "KEY_ID": "set-1", "RETRY_INTERVAL": 0.05, "RETRY_MAX_INTERVAL": 0.5}


@contextmanager
def shared_signals_on(**extra):
    from django.conf import settings
    from django.test import override_settings

    with override_settings(JWT_SESSIONS={**settings.JWT_SESSIONS, "BCRYPT_ROUNDS": 4,
                                         "SHARED_SIGNALS": {**_set_keys(), **extra}}):
        yield


@contextmanager
def _off():
    """Shared Signals as the site has it: off."""
    yield


def _streams(owner, count: int, endpoint: str) -> None:
    from jwt_sessions.shared_signals.events import SESSION_REVOKED
    from jwt_sessions.shared_signals.models import DeliveryMethod, SsfStream

    SsfStream.objects.all().delete()
    for index in range(count):
        SsfStream.objects.create(owner=owner, audience=f"https://rp{index}.example.test/",
                                 delivery_method=DeliveryMethod.PUSH, endpoint_url=endpoint,
                                 events_requested=[SESSION_REVOKED])


def _revoker(session_ids: list):
    """A call that revokes the next prepared session."""
    from jwt_sessions import api

    return lambda: api.revoke_session(session_ids.pop())


def bench_outbox_cost(cfg: bench.Config, report: bench.Report, user) -> dict:
    """One revocation's own cost (the call, inside its transaction): without Shared
    Signals, and with 1 and 5 push streams (the push itself runs after, elsewhere).
    Settings interleave in rounds, so a noisy neighbour hits them alike."""
    from benchmarks.harness import cost, summarise
    from jwt_sessions import services
    from jwt_sessions.shared_signals import pusher as pusher_module

    rounds, per_round = 5, cfg.n(60, 12)
    samples: dict[int, list[float]] = {streams: [] for streams in MEASURE_STREAMS}
    counted = {}
    cpu: dict[int, float] = dict.fromkeys(MEASURE_STREAMS, 0.0)
    real_schedule = pusher_module.pusher.schedule
    pusher_module.pusher.schedule = lambda jtis: None  # time the transaction, not the push
    try:
        for _ in range(rounds):
            for streams in MEASURE_STREAMS:
                with shared_signals_on() if streams else _off():
                    _streams(user, streams, "http://127.0.0.1:9/unused")
                    revoke_next = _revoker([services.issue_tokens(user).session_id
                                            for _ in range(per_round + 1)])
                    counted[streams] = cost(revoke_next)
                    started = time.process_time()
                    samples[streams] += bench.timed(revoke_next, per_round)[1]
                    cpu[streams] += time.process_time() - started
    finally:
        pusher_module.pusher.schedule = real_schedule
    n = rounds * per_round
    # CPU per revocation: what the outbox adds to this process, apart from the waits
    # (a SQLite commit's fsync dominates the wall time and drowns the difference).
    figures = {streams: cpu[streams] / n * 1e6 for streams in MEASURE_STREAMS}
    rows = []
    for streams in MEASURE_STREAMS:
        summary = summarise(samples[streams])
        rows.append([f"{streams} stream(s)" if streams else "Shared Signals off",
                     bench.fmt(summary.p50), bench.fmt(summary.p99), bench.fmt(figures[streams]),
                     bench.fmt(counted[streams].sql, 1), bench.fmt(counted[streams].redis, 1),
                     bench.fmt(figures[streams] - figures[0]) if streams else "-"])
    report.add("## 1. Outbox cost per revocation", "",
               f"`api.revoke_session()` of one live session, {n} times per row in {rounds} "
               "interleaved rounds, in-process "
               "(SQLite or PostgreSQL as the run says), ES256 SET signing. The outbox writes "
               "one signed row per stream in the revocation's own transaction.", "")
    report.table(["setting", "wall p50 us", "wall p99 us", "CPU us", "SQL",
                  "Redis round trips", "added CPU us"], rows)
    return figures


def bench_delivery(cfg: bench.Config, report: bench.Report, user) -> dict | None:
    """A's revocation committed -> B's 202 received by A's pusher (B answers after it
    verified the SET, recorded its jti and acted, in its own database)."""
    from tests.ssf_helpers import B_AUDIENCE, PeerB

    if shutil.which("redis-server") is None:
        report.add("## 2. SET delivery latency", "", "Skipped: redis-server missing.", "")
        return None
    from jwt_sessions import api, services
    from jwt_sessions.shared_signals import pusher as pusher_module
    from jwt_sessions.shared_signals.models import SsfStream

    n = cfg.n(200, 40)
    committed: dict[str, float] = {}
    acted: dict[str, float] = {}
    done = threading.Event()
    real_schedule, real_push = pusher_module.pusher.schedule, pusher_module.push_set

    def schedule(jtis):
        now = time.perf_counter()
        for jti in jtis:
            committed[jti] = now
        real_schedule(jtis)

    def push(url, token, authorization, timeout):
        result = real_push(url, token, authorization, timeout)
        if result.delivered:
            acted[jwt.decode(token, options={"verify_signature": False})["jti"]] = (
                time.perf_counter())
            done.set()
        return result

    with tempfile.TemporaryDirectory() as tmp:
        peer = PeerB(Path(tmp))
        peer.start()
        pusher_module.pusher.schedule, pusher_module.push_set = schedule, push
        try:
            with shared_signals_on():
                _streams(user, 1, peer.receive_url)
                SsfStream.objects.update(audience=B_AUDIENCE)
                sessions = [services.issue_tokens(user).session_id for _ in range(n + 10)]
                for index, session_id in enumerate(sessions):
                    done.clear()
                    api.revoke_session(session_id)
                    assert done.wait(10), "no delivery within 10 s"
                    if index < 10:  # warm-up: connections, B's first requests
                        acted.clear()
                        committed.clear()
                pusher_module.pusher.stop()
        finally:
            pusher_module.pusher.schedule, pusher_module.push_set = real_schedule, real_push
            peer.close()
    samples = sorted((acted[jti] - committed[jti]) * 1000 for jti in acted)
    p50 = samples[len(samples) // 2]
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    report.add("## 2. SET delivery latency (push, RFC 8935)", "",
               f"{len(samples)} revocations in this process (A), one at a time; receiver B is "
               "a uvicorn process with its own database and Redis on the same host. From "
               "A's commit (its on-commit hook) to B's 202 reaching A: B has verified the "
               "ES256 signature, checked iss/aud/typ, recorded the jti and looked up the "
               "named session, all before answering.", "")
    report.table(["p50 ms", "p99 ms", "mean ms", "max ms"],
                 [[bench.fmt(p50, 2), bench.fmt(p99, 2),
                   bench.fmt(statistics.fmean(samples), 2), bench.fmt(samples[-1], 2)]])
    return {"p50_ms": p50, "p99_ms": p99}


OWN_CHECK = "the token's own access check (`GET whoami/jwt_sessions/`)"
INTROSPECTION = "introspection of that token by a gateway (`POST auth/introspect/`)"
TARGET_RATIO = 0.8


def _met(ratio: float) -> str:
    """A rate ratio beside the target."""
    verdict = "met" if ratio >= TARGET_RATIO else "missed"
    return f"{bench.ratio(ratio)} (target >= {TARGET_RATIO}x: {verdict})"


def _introspection_calls(access: str, gateway: str, token: str):
    """The two requests through `django.test.Client`; the introspection's answer is read
    once here, not in the timed calls (parsing it is the client's cost, not the server's)."""
    from django.test import Client

    client, body = Client(), f"token={token}"

    def own():
        bench.ok(client.get("/whoami/jwt_sessions/", HTTP_AUTHORIZATION=f"Bearer {access}"))

    def introspected():
        return bench.ok(client.post("/auth/introspect/", body, HTTP_AUTHORIZATION=gateway,
                                    content_type="application/x-www-form-urlencoded"))

    assert introspected().json()["active"] is True
    return own, introspected


def bench_introspection_in_process(cfg: bench.Config, report: bench.Report, access: str,
                                   gateway: str, token: str) -> float:
    """CPU per request of both through Django's test client, rounds interleaved: no
    server, no wrk, so far less noise than HTTP (and no share of either's costs)."""
    from benchmarks.harness import cost

    rounds, per_round = cfg.n(9, 5), cfg.n(400, 150)
    calls = dict(zip((OWN_CHECK, INTROSPECTION), _introspection_calls(access, gateway, token),
                     strict=True))
    for call in calls.values():
        for _ in range(50):  # warm: the verified-token memo, the permission memo, imports
            call()
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    wall: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(per_round):
                call()
            cpu[name].append((time.process_time() - cpu_started) / per_round * 1e6)
            wall[name].append((time.perf_counter() - started) / per_round * 1e6)
    figures = {name: statistics.median(cpu[name]) for name in calls}
    ratio = figures[OWN_CHECK] / figures[INTROSPECTION]
    rows = []
    for name, call in calls.items():
        counted = cost(call, 20)
        rows.append([name, bench.fmt(figures[name]), bench.fmt(statistics.median(wall[name])),
                     bench.fmt(counted.sql, 1), bench.fmt(counted.redis, 1),
                     "1.00x" if name == OWN_CHECK else _met(ratio)])
    report.add("## 3a. Introspection in-process vs the token's own check", "",
               f"`django.test.Client`, the same middleware and views as under gunicorn, "
               f"{rounds} interleaved rounds of {per_round} requests each, median CPU "
               "(`time.process_time`) per request; rate = the inverse ratio of CPU.", "")
    report.table(["request", "CPU us", "wall us", "SQL", "Redis round trips",
                  "rate vs own check"], rows)
    return ratio


def bench_introspection(cfg: bench.Config, report: bench.Report, user) -> dict | None:
    from django.test import Client

    from benchmarks import loadtest

    access = bench.jwt_login(Client(), user.username)["access"]
    gateway, token = bench.introspection_credentials(
        {"jwt_sessions": ("Authorization", f"Bearer {access}")})
    in_process = bench_introspection_in_process(
        cfg, report, access, gateway.split(": ", 1)[1], token)
    if not loadtest.available():
        report.add("## 3b. Introspection over HTTP", "", "Skipped: wrk or gunicorn missing.", "")
        return {"ratio": None, "in_process": in_process}
    seconds, connections, rounds = cfg.n(5, 3), 8, 5
    runs: dict[str, list[loadtest.WrkResult]] = {OWN_CHECK: [], INTROSPECTION: []}
    cpu_ms: dict[str, list[float]] = {OWN_CHECK: [], INTROSPECTION: []}
    with loadtest.gunicorn(workers=2) as base:
        loads = {OWN_CHECK: (f"{base}/whoami/jwt_sessions/", f"Authorization: Bearer {access}",
                             None),
                 INTROSPECTION: (f"{base}/auth/introspect/", gateway, f"token={token}")}
        for _ in range(rounds):  # interleaved: a noisy neighbour hits both alike
            for name, (target, header, form) in loads.items():
                before = loadtest.server_cpu_seconds(base)
                result = loadtest.wrk(target, header, seconds, connections, form=form)
                cpu_ms[name].append((loadtest.server_cpu_seconds(base) - before)
                                    / max(result.requests, 1) * 1000)
                runs[name].append(result)
    own, introspected = runs[OWN_CHECK], runs[INTROSPECTION]
    mine = statistics.median(r.per_second for r in own)
    theirs = statistics.median(r.per_second for r in introspected)
    # Each round's ratio too: both requests of a round met the same neighbours.
    paired = statistics.median(b.per_second / a.per_second
                               for a, b in zip(own, introspected, strict=True))
    server = {name: statistics.median(values) for name, values in cpu_ms.items()}
    rows = [[name, bench.fmt(statistics.median(r.per_second for r in results)),
             bench.fmt(statistics.median(r.p50_ms for r in results), 2),
             bench.fmt(server[name] * 1000), str(sum(r.errors for r in results)),
             "1.00x" if name == OWN_CHECK else _met(theirs / mine)]
            for name, results in runs.items()]
    report.add("## 3b. Introspection over HTTP vs the token's own check", "",
               f"gunicorn (2 sync workers) on 127.0.0.1, wrk -t1 -c{connections} -d{seconds}s, "
               f"{rounds} interleaved rounds each, median shown; the median of the rounds' "
               f"own ratios (each pair ran back to back) is {bench.ratio(paired)}. Server "
               "CPU: the gunicorn processes' user + system time per request (/proc), which "
               "other jobs on the cores do not inflate as they do req/s; its ratio is "
               f"{bench.ratio(server[OWN_CHECK] / server[INTROSPECTION])}. The introspection "
               "call checks two tokens (the gateway's and the one asked about) in one Redis "
               "round trip; the gateway's permission is remembered per access token, so a "
               "repeat call makes no SQL query (and so opens no database connection).", "")
    report.table(["request", "req/s", "p50 ms", "server CPU us", "non-2xx",
                  "rate vs own check"], rows)
    return {"ratio": theirs / mine, "paired": paired, "in_process": in_process,
            "server_cpu": server[OWN_CHECK] / server[INTROSPECTION]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--output")
    parser.add_argument("--only", help="comma-separated: outbox,delivery,introspection")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else {"outbox", "delivery", "introspection"}
    cfg = bench.Config(quick=args.quick, http=True, postgres=args.postgres)
    bench.prepare_database(cfg)
    import benchmarks.harness  # noqa: F401  (counts Redis round trips from here on)

    bench.redis_conn().flushdb()
    user = bench.make_user("bench")
    report = bench.Report()
    report.add("# Shared Signals benchmarks", "", *bench.machine(cfg), "")
    bench.log("outbox cost")
    outbox = bench_outbox_cost(cfg, report, user) if "outbox" in only else None
    bench.log("delivery latency")
    delivery = bench_delivery(cfg, report, user) if "delivery" in only else None
    bench.log("introspection, in-process and over HTTP")
    introspection = bench_introspection(cfg, report, user) if "introspection" in only else None
    report.add("## Targets", "")
    http = introspection["ratio"] if introspection else None
    report.table(["target", "measured", "met"], [
        [f"introspection over HTTP >= {TARGET_RATIO}x the token's own check (req/s)",
         "skipped" if http is None else
         f"{bench.ratio(http)} (paired rounds: {bench.ratio(introspection['paired'])})",
         "-" if http is None else ("yes" if http >= TARGET_RATIO else "no")],
        ["the same as server CPU per request over HTTP (a guide)",
         "skipped" if http is None else bench.ratio(introspection["server_cpu"]), "-"],
        ["the same in-process (CPU per request; a guide)",
         bench.ratio(introspection["in_process"]) if introspection else "skipped", "-"],
        ["SET delivery p99 (same host)",
         f"{bench.fmt(delivery['p99_ms'], 2)} ms" if delivery else "skipped", "-"],
        ["outbox cost per revocation, 1 stream (added CPU)",
         f"{bench.fmt(outbox[1] - outbox[0])} us" if outbox else "skipped", "-"]])
    report.publish(args.output)


if __name__ == "__main__":
    main()
