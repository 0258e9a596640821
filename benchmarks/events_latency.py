"""Revocation events across processes, with a redis-server of its own.

    python benchmarks/events_latency.py [--quick] [--output FILE]

1. Delivery: process A revokes sessions one by one (`api.revoke_session`); process B,
   subscribed, notes when each event arrives. Latency = B's arrival - A's return.
2. Visibility with LOCAL_CACHE on: B answers a token from memory, A revokes it, B spins on
   the access check until it is refused. Latency = B's first refusal - A's return. Then
   the same across a silent partition (B's link to Redis drops packets, through a TCP
   proxy): the worst case is bounded by the heartbeat, and always by `max_age`.
3. Flood: 10,000 revocation events within one second while B serves requests; B's request
   latency with and without the flood.

Times are CLOCK_MONOTONIC, which all processes of one Linux host share. Markdown goes to
stdout (and FILE), progress to stderr.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_AGE = timedelta(seconds=30)
LOCAL_CACHE = {"max_age": MAX_AGE, "max_entries": 10_000}
CPU_BOUND_P99_TARGET_MS = 10.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def setup_django(redis_url: str, database: str, local_cache: bool = False) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.site.settings"
    os.environ["BENCH_REDIS_URL"] = redis_url
    os.environ["BENCH_DATABASE_URL"] = f"sqlite:///{database}"
    import django
    from django.conf import settings

    django.setup()
    if local_cache:
        settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "LOCAL_CACHE": LOCAL_CACHE}


# Headline figures for run.py's targets (`--json`): name -> (p50, p99, max) in ms.
FIGURES: dict[str, tuple[float, float, float]] = {}


def quantiles(samples_ms: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples_ms)
    return (ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * .99))],
            ordered[-1])


def percentiles(samples_ms: list[float]) -> list[str]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    return [str(len(ordered)), f"{at(0.5):.2f}", f"{at(0.9):.2f}", f"{at(0.99):.2f}",
            f"{ordered[-1]:.2f}"]


# ---------------------------------------------------------------------------- role B
def run_queue_ns(thread_id: int) -> int | None:
    """Nanoseconds this thread has spent runnable but waiting for a CPU (Linux's
    schedstat; None elsewhere)."""
    try:
        with open(f"/proc/self/task/{thread_id}/schedstat") as stat:
            return int(stat.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None


class Trace:
    """Where one watch's time went in B: which thread read the revocation's event (the
    check draining it, or the receiver) and when, how long B's checking thread then
    waited for a CPU before it refused, and how long the garbage collector paused B."""

    def __init__(self, session_id: str) -> None:
        from jwt_sessions import events

        self.session_id, self.read_by, self.read_at = session_id, None, None
        self.gc_ns = self._gc_start = 0
        self._main = threading.main_thread().native_id
        self._waited_at_read: int | None = None
        self._unsubscribe = events.subscribe(self._on_event)
        gc.callbacks.append(self._on_gc)

    def _on_event(self, event) -> None:
        if str(event.session_id) == self.session_id and self.read_by is None:
            self.read_at, self._waited_at_read = time.monotonic_ns(), run_queue_ns(self._main)
            self.read_by = ("check" if threading.current_thread() is threading.main_thread()
                            else "receiver")

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.monotonic_ns()
        else:
            self.gc_ns += time.monotonic_ns() - self._gc_start

    def close(self) -> dict:
        gc.callbacks.remove(self._on_gc)
        self._unsubscribe()
        waited, before = run_queue_ns(self._main), self._waited_at_read
        return {"read_by": self.read_by or "nobody", "read_at": self.read_at,
                "gc_ms": self.gc_ns / 1e6,
                "waited_ms": None if None in (waited, before) else (waited - before) / 1e6}


def role_listener() -> None:
    """Print `<session id> <arrival ns>` for every revocation event."""
    from jwt_sessions import events

    events.subscribe(lambda e: e.kind == events.REVOKED and print(
        e.session_id, time.monotonic_ns(), flush=True))
    assert events.wait_until_healthy(10)
    print("ready", flush=True)
    sys.stdin.read()
    events.stop()


def role_server() -> None:
    """Commands on stdin, one JSON per line, answers on stdout."""
    from jwt_sessions import events
    from jwt_sessions.access import authenticate_access as check
    from jwt_sessions.exceptions import SessionRevoked
    from jwt_sessions.redis import local_cache

    print("ready", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["do"] == "watch":  # cache the token, then spin until it is refused
            access = command["access"]
            cache = local_cache.current()
            warm_until = time.monotonic() + 30  # after a partition: until Redis is used again
            while True:
                assert events.wait_until_healthy(30)
                check(access)
                hits = cache.hits
                check(access)
                if cache.hits == hits + 1:
                    break
                assert time.monotonic() < warm_until, "not served from the local cache"
                time.sleep(0.1)
            trace = Trace(command["session_id"])
            sys.setswitchinterval(command["switch_interval"])
            print("ready", flush=True)
            deadline = time.monotonic() + command["timeout"]
            refused = None
            while time.monotonic() < deadline:
                try:
                    check(access)
                except SessionRevoked:
                    refused = time.monotonic_ns()
                    break
                if command["yield"]:
                    time.sleep(0)  # as a request that writes its response: the GIL is free
            sys.setswitchinterval(0.005)
            print(json.dumps({"refused": refused, **trace.close()}), flush=True)
        elif command["do"] == "serve":  # time requests for `seconds`
            from django.test import Client

            client, header = Client(), {"HTTP_AUTHORIZATION": f"Bearer {command['access']}"}
            local_cache.current()
            events.wait_until_healthy(30)
            samples = []
            print("ready", flush=True)
            deadline = time.monotonic() + command["seconds"]
            while time.monotonic() < deadline:
                start = time.monotonic_ns()
                assert client.get("/whoami/jwt_sessions/", **header).status_code == 200
                samples.append((start, time.monotonic_ns() - start))
            print(json.dumps({"samples": samples}), flush=True)
    events.stop()


# ---------------------------------------------------------------------------- role A
class Child:
    def __init__(self, role: str, redis_url: str, database: str, cache: bool) -> None:
        args = [sys.executable, __file__, "--role", role, "--redis", redis_url,
                "--database", database] + (["--local-cache"] if cache else [])
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, cwd=ROOT)
        self.expect_ready()

    def send(self, **command) -> None:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def line(self) -> str:
        return self.process.stdout.readline()

    def expect_ready(self) -> None:
        assert self.line().strip() == "ready"

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


def open_sessions(user, count: int) -> list:
    from django.conf import settings
    from django.test import override_settings

    from jwt_sessions.services import issue_tokens

    with override_settings(JWT_SESSIONS={**settings.JWT_SESSIONS, "BCRYPT_ROUNDS": 4}):
        return [issue_tokens(user) for _ in range(count)]


def bench_delivery(args, report: list[str], user) -> None:
    from jwt_sessions import api

    count = 100 if args.quick else 300
    pairs = open_sessions(user, count)
    child = Child("listener", args.redis, args.database, cache=False)
    returned = {}
    log(f"delivery: {count} revocations")
    for pair in pairs:
        assert api.revoke_session(pair.session_id)
        returned[str(pair.session_id)] = time.monotonic_ns()
        time.sleep(0.005)
    latencies = []
    for _ in pairs:
        session_id, seen = child.line().split()
        latencies.append((int(seen) - returned[session_id]) / 1e6)
    child.close()
    FIGURES["delivery"] = quantiles(latencies)
    report += ["## Event delivery (revoke returned in A -> event seen in B)", "",
               f"{count} revocations through `jwt_sessions.api.revoke_session`, 5 ms apart; "
               "B is another process subscribed with `events.subscribe`.", "",
               "| events | p50 ms | p90 ms | p99 ms | max ms |", "|---|---|---|---|---|",
               "| " + " | ".join(percentiles(latencies)) + " |", ""]


def watch_trials(args, user, count: int, redis_url: str, proxy=None, switch_interval=0.005,
                 yields=False) -> list[dict]:
    """One trace per session cached in B and revoked by A: `ms` from revoke returned to
    first refusal, and B's `Trace` of it."""
    from jwt_sessions import api

    child = Child("server", redis_url, args.database, cache=True)
    latencies = []
    for pair in open_sessions(user, count):
        child.send(do="watch", access=pair.access, session_id=str(pair.session_id),
                   timeout=MAX_AGE.total_seconds() + 10,
                   switch_interval=switch_interval, **{"yield": yields})
        child.expect_ready()
        if proxy is not None:
            proxy.cut("blackhole")
        assert api.revoke_session(pair.session_id)
        returned = time.monotonic_ns()
        trace = json.loads(child.line())
        assert trace["refused"] is not None, "never refused"
        refused, read = trace["refused"], trace["read_at"]
        latencies.append({**trace, "ms": (refused - returned) / 1e6,
                          "to_read_ms": None if read is None else (read - returned) / 1e6,
                          "after_read_ms": None if read is None else (refused - read) / 1e6})
        if proxy is not None:
            proxy.restore()
    child.close()
    return latencies


def bench_visibility(args, report: list[str], user, server) -> None:
    from tests.redis_servers import TcpProxy

    count = 100 if args.quick else 200
    log(f"visibility with LOCAL_CACHE: 3 x {count} revocations")
    cases = {
        "B's thread busy (CPU-bound checks back to back)": watch_trials(
            args, user, count, args.redis),
        "B's thread busy, `sys.setswitchinterval(0.001)`": watch_trials(
            args, user, count, args.redis, switch_interval=0.001),
        "B's thread doing I/O between checks (as requests do)": watch_trials(
            args, user, count, args.redis, yields=True),
    }
    latencies = {label: [t["ms"] for t in traces] for label, traces in cases.items()}
    partitions = 3 if args.quick else 8
    log(f"visibility across a silent partition: {partitions} trials")
    proxy = TcpProxy(server.port)
    try:
        cut = [t["ms"] for t in watch_trials(args, user, partitions, proxy.url(), proxy=proxy)]
    finally:
        proxy.close()
    FIGURES["visible, CPU-bound B"], FIGURES["visible, I/O-bound B"] = (
        quantiles(latencies[label]) for label in list(cases)[::2])
    FIGURES["visible, silent partition"] = quantiles(cut)
    report += ["## Revocation visibility with LOCAL_CACHE on (revoke returned in A -> "
               "first refusal in B)", "",
               f"B answers the token from its local cache (`max_age` {MAX_AGE.seconds} s, "
               "`EVENTS_HEARTBEAT` 1 s) and spins on `authenticate_access` until refused; "
               "A revokes. Silent partition: B reaches Redis through a TCP proxy that "
               "starts dropping every packet (no error, no close) just before A revokes; B "
               "stops trusting its cache when its heartbeat is 3 s old, then its Redis "
               "check waits out the socket timeout (0.5 s) and the database refuses. A "
               "thread that never releases the GIL delays B's receiver thread by up to one "
               "switch interval (5 ms by default) each time it needs the GIL back.", "",
               "| case | revocations | p50 ms | p90 ms | p99 ms | max ms |",
               "|---|---|---|---|---|---|",
               *(f"| {label} | " + " | ".join(percentiles(values)) + " |"
                 for label, values in latencies.items()),
               "| silent partition (B busy) | " + " | ".join(percentiles(cut)) + " |", "",
               visibility_target(latencies[next(iter(cases))]), "",
               *where_the_time_went(cases)]


def visibility_target(cpu_bound_ms: list[float]) -> str:
    p99 = quantiles(cpu_bound_ms)[1]
    return (f"Target: CPU-bound p99 <= {CPU_BOUND_P99_TARGET_MS:.0f} ms: "
            f"{'met' if p99 <= CPU_BOUND_P99_TARGET_MS else 'NOT met'} ({p99:.2f} ms).")


def where_the_time_went(cases: dict[str, list[dict]]) -> list[str]:
    """B's own account of the slowest tenth of each case's trials (medians): from revoke
    returned to the event read (by the check or the receiver thread), from there to the
    refusal (dropping the entry, the confirming Redis round trip), how much of the latter
    B's checking thread spent runnable but waiting for a CPU (Linux's schedstat), and how
    many trials the garbage collector paused for more than 1 ms."""
    def median(values: list) -> str:
        known = [v for v in values if v is not None]
        return f"{statistics.median(known):.2f}" if known else "n/a"

    rows = []
    for label, traces in cases.items():
        readers = "/".join(str(sum(t["read_by"] == who for t in traces))
                           for who in ("check", "receiver", "nobody"))
        slowest = sorted(traces, key=lambda t: t["ms"])[-max(1, len(traces) // 10):]
        rows.append(f"| {label} | {readers} | {median([t['ms'] for t in slowest])} | "
                    f"{median([t['to_read_ms'] for t in slowest])} | "
                    f"{median([t['after_read_ms'] for t in slowest])} | "
                    f"{median([t['waited_ms'] for t in slowest])} | "
                    f"{slowest[-1]['ms']:.2f} / {median([slowest[-1]['to_read_ms']])} / "
                    f"{median([slowest[-1]['waited_ms']])} | "
                    f"{sum(t['gc_ms'] > 1 for t in traces)} "
                    f"(max {max(t['gc_ms'] for t in traces):.1f} ms) |")
    return ["Where the time went, from B's own trace: who read the revocation's event over "
            "all trials (the check draining it / the receiver thread / nobody, Redis "
            "refused first), then medians over the slowest tenth of the trials: revoke "
            "returned -> event read in B, event read -> refusal (the entry dropped, the "
            "confirming Redis round trip), and how much of the latter B's checking thread "
            "spent runnable but waiting for a CPU (Linux's schedstat); the same for the "
            "slowest trial; and the trials the garbage collector paused for more than "
            "1 ms.", "",
            "| case | read by check/receiver/nobody | slowest 10%: latency ms | "
            "-> event read ms | event read -> refused ms | of which waiting for a CPU ms | "
            "slowest: latency / -> read / CPU wait after the read, ms | GC pauses > 1 ms |",
            "|---|---|---|---|---|---|---|---|", *rows, ""]


def bench_flood(args, report: list[str], user) -> None:
    from django_redis import get_redis_connection

    from jwt_sessions.redis import layout
    from jwt_sessions.redis.layout import EVENT_REVOKED

    events_per_second, seconds = 10_000, 1.0
    rows = []
    for cache in (True, False):
        pair = open_sessions(user, 1)[0]
        child = Child("server", args.redis, args.database, cache=cache)
        child.send(do="serve", access=pair.access, seconds=4.0)
        child.expect_ready()
        time.sleep(2.0)  # warm-up, then the baseline
        log(f"flood: {events_per_second} events in {seconds} s (LOCAL_CACHE {cache})")
        conn = get_redis_connection("default")
        import uuid

        flood_start = time.monotonic_ns()
        chunk = 500
        for step in range(events_per_second // chunk):
            pipe = conn.pipeline(transaction=False)
            for _ in range(chunk):
                pipe.publish(layout.events_channel(),
                             EVENT_REVOKED + layout.event_record(uuid.uuid4()))
            pipe.execute()
            pause = flood_start / 1e9 + (step + 1) * seconds * chunk / events_per_second
            time.sleep(max(0.0, pause - time.monotonic()))
        flood_end = time.monotonic_ns()
        samples = json.loads(child.line())["samples"]
        child.close()
        # Baseline: the half second just before the flood (past B's warm-up).
        before = [d / 1000 for s, d in samples if flood_start - 5e8 <= s < flood_start]
        during = [d / 1000 for s, d in samples if flood_start <= s < flood_end]
        label = "on" if cache else "off"
        for phase, values, seconds_ in (("the 0.5 s before", before, 0.5),
                                        ("during the flood", during,
                                         (flood_end - flood_start) / 1e9)):
            ordered = sorted(values)
            rows.append(f"| {label} | {phase} | {len(values) / seconds_:,.0f} | "
                        f"{statistics.median(ordered):.0f} | "
                        f"{ordered[int(len(ordered) * 0.99)]:.0f} | {ordered[-1]:.0f} |")
    report += ["## Flood: 10,000 revocation events in one second", "",
               "B serves the whoami view in a loop (in-process client, one thread) while A "
               "publishes 10,000 single-session revocation messages within a second (20 "
               "pipelines of 500, paced). B's receiver decodes each and drops it from its "
               "cache. Request latency in microseconds.", "",
               "| LOCAL_CACHE | phase | requests/s | p50 us | p99 us | max us |",
               "|---|---|---|---|---|---|", *rows, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output")
    parser.add_argument("--json", help="also write the headline figures (ms) to this file")
    parser.add_argument("--only", help="comma-separated: delivery,visibility,flood")
    parser.add_argument("--role", choices=["listener", "server"], help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--local-cache", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        setup_django(args.redis, args.database, args.local_cache)
        role_listener() if args.role == "listener" else role_server()
        return

    from tests.redis_servers import start_redis

    server = start_redis()
    workdir = tempfile.mkdtemp(prefix="jwts-events-bench-")
    args.redis, args.database = server.url, os.path.join(workdir, "bench.sqlite3")
    try:
        setup_django(args.redis, args.database)
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        user = get_user_model().objects.create_user("events-bench", password="x")
        report = ["# Revocation events across processes", "",
                  f"- redis-server {server.client().info('server')['redis_version']} of its "
                  f"own on 127.0.0.1; SQLite; `nproc` = {os.cpu_count()}, load average at "
                  f"start {os.getloadavg()[0]:.1f}", ""]
        only = set(args.only.split(",")) if args.only else {"delivery", "visibility", "flood"}
        if "delivery" in only:
            bench_delivery(args, report, user)
        if "visibility" in only:
            bench_visibility(args, report, user, server)
        if "flood" in only:
            bench_flood(args, report, user)
    finally:
        server.close()
    text = "\n".join(report) + "\n"
    sys.stdout.write(text)
    if args.output:
        Path(args.output).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {**FIGURES, "max_age": MAX_AGE.total_seconds() * 1000}))


if __name__ == "__main__":
    main()
