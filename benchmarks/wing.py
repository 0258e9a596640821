"""The Redis wing's hot paths, interleaved so that other work on the machine weighs on
every figure alike: the access check (sync and async, with and without counters due),
a LOCAL_CACHE hit, and refresh against simplejwt's rotation + blacklist.

    python benchmarks/wing.py [--rounds 7] [--ops 150] [--postgres]

Each round measures every figure once, in the same order; the table gives the median of
the rounds, and the refresh ratio is the median of the per-round ratios (a ratio taken
within one round, seconds apart, is what load cannot skew). Uses `BENCH_REDIS_URL` as
run.py does (it FLUSHDBs that database).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import run  # noqa: E402  (sets DJANGO_SETTINGS_MODULE and sys.path)


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


def due_counters(call):
    """`call` with a counter recorded and a flush due before it: the check carries it."""
    from jwt_sessions import stats

    flushing = getattr(stats, "counters", stats)  # the counters' module, before and after

    def with_counters() -> None:
        flushing.record("refreshes")
        flushing._last_flush = 0.0
        call()

    return with_counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=150)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    cfg = run.Config(quick=True, http=False, postgres=args.postgres)
    run.prepare_database(cfg)
    run.redis_conn().flushdb()

    from django.test import Client

    from jwt_sessions import events
    from jwt_sessions.access import aauthenticate_access, authenticate_access

    user = run.make_user("wing")
    client = Client()
    token = run.jwt_login(client, user.username)["access"]
    jwt_chain = run.Chain("/auth/refresh/", run.jwt_login(client, user.username)["refresh"])
    simple = run.ok(run.post_json(client, "/simplejwt/login/",
                                  {"username": user.username, "password": run.PASSWORD})).json()
    simple_chain = run.Chain("/simplejwt/refresh/", simple["refresh"])
    cached = run.local_cache_on()

    def cached_hit() -> None:
        with cached:
            events.wait_until_healthy(10)
            authenticate_access(token)  # remembered
            return per_op_us(lambda: authenticate_access(token), args.ops)

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
            "jwt_sessions refresh, Redis hit (us)": per_op_us(jwt_chain, args.ops // 3),
            "simplejwt refresh, rotation + blacklist (us)":
                per_op_us(simple_chain, args.ops // 3),
        }
        if number < 0:
            continue
        ratios.append(row["simplejwt refresh, rotation + blacklist (us)"]
                      / row["jwt_sessions refresh, Redis hit (us)"])
        for name, value in row.items():
            figures.setdefault(name, []).append(value)
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"| figure ({database}, {args.rounds} rounds) | median | best |")
    print("|---|---|---|")
    for name, values in figures.items():
        print(f"| {name} | {statistics.median(values):,.0f} | {min(values):,.0f} |")
    print(f"| refresh speed-up vs simplejwt (median of rounds) | "
          f"{statistics.median(ratios):.2f}x | {max(ratios):.2f}x |")


if __name__ == "__main__":
    main()
