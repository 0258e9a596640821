"""The Redis wing's hot paths, interleaved so that other work on the machine weighs on
every figure alike: the access check (sync and async, with and without counters due),
a LOCAL_CACHE hit, and refresh against simplejwt's rotation + blacklist, on SQLite and
on PostgreSQL (each in a process of its own), with what one refresh costs each library
in SQL statements, write transactions and Redis round trips.

    python benchmarks/wing.py [--rounds 5] [--ops 150] [--sqlite | --postgres]

Each round measures every figure once, in the same order; the table gives the median of
the rounds, and the refresh ratio is the median of the per-round ratios (a ratio taken
within one round, with both libraries' refreshes alternating in small blocks, is what
load cannot skew). Uses `BENCH_REDIS_URL` as run.py does (it FLUSHDBs that database) and,
for PostgreSQL, `BENCH_DATABASE_URL` (dropped and recreated).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import run  # noqa: E402  (sets DJANGO_SETTINGS_MODULE and sys.path)

TARGET = 1.5  # jwt_sessions' refresh on a Redis hit against simplejwt's rotate + blacklist
SIMPLEJWT = "simplejwt refresh, rotation + blacklist (us)"
JWT_SESSIONS = "jwt_sessions refresh, Redis hit (us)"


def per_op_us(call, n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        call()
    return (time.perf_counter_ns() - start) / 1000 / n


def async_per_op_us(check, token: str, n: int) -> float:
    """Microseconds per awaited check, in one event loop (its client built beforehand)."""
    async def go() -> float:
        await check(token)  # builds this loop's client
        start = time.perf_counter_ns()
        for _ in range(n):
            await check(token)
        return (time.perf_counter_ns() - start) / 1000 / n

    return asyncio.run(go())


def alternating_us(calls: dict[str, object], n: int, block: int = 5) -> dict[str, float]:
    """Microseconds per call of each of `calls`, `n` calls each, in alternating blocks of
    `block`: a burst of load on the machine falls on every one of them alike."""
    spent = dict.fromkeys(calls, 0)
    for _ in range(0, n, block):
        for name, call in calls.items():
            start = time.perf_counter_ns()
            for _ in range(block):
                call()
            spent[name] += time.perf_counter_ns() - start
    done = -(-n // block) * block
    return {name: total / 1000 / done for name, total in spent.items()}


def due_counters(call):
    """`call` with a counter recorded and a flush due before it: the check carries it."""
    from jwt_sessions import stats

    flushing = getattr(stats, "counters", stats)  # the counters' module, before and after

    def with_counters() -> None:
        flushing.record("refreshes")
        flushing._last_flush = 0.0
        call()

    return with_counters


def refresh_costs(chains: dict[str, object]) -> dict[str, object]:
    """SQL statements, write transactions and Redis round trips of one refresh."""
    from benchmarks.harness import cost

    return {name: cost(chain, repeat=10) for name, chain in chains.items()}


def measure(args: argparse.Namespace) -> dict:
    """Every figure of one database, in interleaved rounds; the table's rows."""
    if not args.postgres:  # the settings take BENCH_DATABASE_URL whatever the flag says
        os.environ.pop("BENCH_DATABASE_URL", None)
    run.prepare_database(run.Config(quick=True, http=False, postgres=args.postgres))
    run.redis_conn().flushdb()

    from django.db import connection
    from django.test import Client

    from jwt_sessions import events
    from jwt_sessions.access import aauthenticate_access, authenticate_access

    user = run.make_user("wing")
    client = Client()
    token = run.jwt_login(client, user.username)["access"]
    simple = run.ok(run.post_json(client, "/simplejwt/login/",
                                  {"username": user.username, "password": run.PASSWORD})).json()
    refreshes = {
        JWT_SESSIONS: run.Chain("/auth/refresh/", run.jwt_login(client, user.username)["refresh"]),
        SIMPLEJWT: run.Chain("/simplejwt/refresh/", simple["refresh"]),
    }
    cached = run.local_cache_on()

    def cached_hit() -> float:
        with cached:
            events.wait_until_healthy(10)
            authenticate_access(token)  # remembered
            figure = per_op_us(lambda: authenticate_access(token), args.ops)
        # Without LOCAL_CACHE no receiver runs: left on, it would handle every refresh's
        # "rotated" event in this process, a cost of the cache's, not of a refresh's.
        events.stop()
        return figure

    figures: dict[str, list[float]] = {}
    ratios = []
    for number in range(-1, args.rounds):  # round -1 warms every path up, uncounted
        run.log(f"round {number + 1} of {args.rounds}")
        row = {
            "access check, sync (us)": per_op_us(lambda: authenticate_access(token), args.ops),
            "access check, sync, counters due (us)":
                per_op_us(due_counters(lambda: authenticate_access(token)), args.ops),
            "access check, async (us)":
                async_per_op_us(aauthenticate_access, token, args.ops),
            "LOCAL_CACHE hit (us)": cached_hit(),
            **alternating_us(refreshes, args.ops // 3),
        }
        if number < 0:
            continue
        ratios.append(row[SIMPLEJWT] / row[JWT_SESSIONS])
        for name, value in row.items():
            figures.setdefault(name, []).append(value)
    costs = refresh_costs(refreshes)
    return {
        "database": {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(
            connection.vendor, connection.vendor),  # what ran, whatever the flag said
        "rounds": args.rounds,
        "figures": {name: [statistics.median(values), min(values)]
                    for name, values in figures.items()},
        "ratio": [statistics.median(ratios), max(ratios)],
        "costs": {name.split(" refresh")[0]: [c.sql, c.transactions, c.redis]
                  for name, c in costs.items()},
    }


def print_tables(result: dict) -> None:
    database, (ratio, best) = result["database"], result["ratio"]
    print(f"| figure ({database}, {result['rounds']} rounds) | median | best |")
    print("|---|---|---|")
    for name, (median, least) in result["figures"].items():
        print(f"| {name} | {median:,.0f} | {least:,.0f} |")
    print(f"| refresh speed-up vs simplejwt (median of rounds; target >= {TARGET}x) | "
          f"{ratio:.2f}x | {best:.2f}x |")
    print()
    print(f"| one refresh ({database}) | SQL statements | write transactions "
          "| Redis round trips |")
    print("|---|---|---|---|")
    for name, (sql, writes, trips) in result["costs"].items():
        print(f"| {name} | {sql:g} | {writes:g} | {trips:g} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=150)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--sqlite", action="store_true", help="SQLite only")
    only.add_argument("--postgres", action="store_true", help="PostgreSQL only")
    parser.add_argument("--result", help=argparse.SUPPRESS)  # a child's JSON answer
    args = parser.parse_args()
    if args.sqlite or args.postgres:
        result = measure(args)
        if args.result:
            Path(args.result).write_text(json.dumps(result))
        else:
            print_tables(result)
        return
    results = []
    for database in ("--sqlite", "--postgres"):  # a process each: Django has one setup
        with tempfile.NamedTemporaryFile(suffix=".json") as answer:
            subprocess.run([sys.executable, __file__, database, "--rounds", str(args.rounds),
                            "--ops", str(args.ops), "--result", answer.name], check=True)
            results.append(json.loads(Path(answer.name).read_text()))
    for result in results:
        print_tables(result)
    print(f"| refresh vs simplejwt (target >= {TARGET}x) | median of rounds | best round "
          "| target |")
    print("|---|---|---|---|")
    for result in results:
        ratio, best = result["ratio"]
        print(f"| {result['database']} | {ratio:.2f}x | {best:.2f}x "
              f"| {'met' if ratio >= TARGET else 'not met'} |")


if __name__ == "__main__":
    main()
