"""What a dead Redis adds to each request: prints a table (milliseconds).

    python benchmarks/redis_down.py [--n 300]

Starts its own redis-server behind a TCP proxy (tests/redis_servers.py), a throw-away
SQLite database, and measures an authenticated GET and a refresh through Django's test
client while Redis is up, missed (flushed), refused (connection reset/refused) and
blackholed (packets dropped: every attempt waits for the socket timeout), with the
circuit breaker as configured (open for REDIS_RETRY_INTERVAL) and disabled (interval 0,
i.e. Redis is tried on every request). bcrypt runs at the test suite's 4 rounds: at the
default 12, the database path of a refresh costs ~0.25 s more, Redis up or down.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIMEOUT = 0.5  # the cache's connect/read timeouts, as jwt_sessions.testing.redis_cache sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="requests per fast scenario")
    args = parser.parse_args()

    from tests.redis_servers import TcpProxy, start_redis

    server = start_redis()
    proxy = TcpProxy(server.port)
    os.environ.update(DJANGO_SETTINGS_MODULE="tests.settings", REDIS_URL=proxy.url(),
                      TMPDIR=tempfile.mkdtemp(prefix="jwts-redis-down-"))
    os.environ.pop("DATABASE_URL", None)
    try:
        run(proxy, server, args.n)
    finally:
        proxy.close()
        server.close()


def run(proxy, server, n: int) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import override_settings

    from tests.conftest import Api

    call_command("migrate", verbosity=0)
    logging.getLogger("jwt_sessions").setLevel(logging.CRITICAL)  # outages are the point
    user = get_user_model().objects.create_user("bench", password="Pa55word-bench")
    api = Api()
    tokens = api.login_ok(user.username, password="Pa55word-bench")

    def whoami() -> None:
        assert api.whoami(tokens["access"]).status_code == 200

    def refresh() -> None:
        nonlocal tokens
        response = api.refresh(tokens["refresh"])
        assert response.status_code == 200, response.content
        tokens = response.json()

    def flushed(call):
        def run_flushed() -> None:
            with server.client() as conn:
                conn.flushall()
            call()
        return run_flushed

    rows: list[tuple[str, str, list[float]]] = []

    def measure(label: str, call, count: int, retry: float = 5.0) -> None:
        from jwt_sessions.redis.mirror import circuit

        with override_settings(JWT_SESSIONS={"BCRYPT_ROUNDS": 4, "REDIS_RETRY_INTERVAL": retry}):
            circuit.reset()
            call()  # warm-up; with Redis down this is the request that trips the circuit
            samples = []
            for _ in range(count):
                start = time.perf_counter()
                call()
                samples.append((time.perf_counter() - start) * 1000)
            rows.append((label, call.__name__, samples))

    for name, call in (("whoami", whoami), ("refresh", refresh)):
        call.__name__ = name
        measure("Redis up (hit)", call, n)
        miss = flushed(call)
        miss.__name__ = name
        measure("Redis up, key missing (database path)", miss, min(n, 100))
        proxy.cut("refuse")
        measure("Redis refused, circuit open", call, n)
        measure("Redis refused, no circuit (tried every request)", call, min(n, 100), 0)
        proxy.restore()
        proxy.cut("blackhole")
        measure("Redis blackholed, circuit open", call, n)
        measure("Redis blackholed, no circuit (tried every request)", call, 3, 0)
        proxy.restore()
        time.sleep(0.1)

    from jwt_sessions.redis.mirror import circuit

    circuit.reset()
    first = {}
    for mode in ("refuse", "blackhole"):
        proxy.cut(mode)
        with override_settings(JWT_SESSIONS={"BCRYPT_ROUNDS": 4}):
            circuit.reset()
            start = time.perf_counter()
            whoami()
            first[mode] = (time.perf_counter() - start) * 1000
        proxy.restore()
        time.sleep(0.1)

    base = {call: statistics.median(s) for label, call, s in rows if label == "Redis up (hit)"}
    print(f"Socket timeouts {TIMEOUT} s; REDIS_RETRY_INTERVAL 5 s unless 'no circuit'.\n")
    print("| request | scenario | n | median ms | p99 ms | added vs Redis up (median ms) |")
    print("|---|---|---:|---:|---:|---:|")
    for label, call, samples in rows:
        ordered = sorted(samples)
        median = statistics.median(ordered)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"| {call} | {label} | {len(samples)} | {median:.2f} | {p99:.2f} | "
              f"{median - base[call]:+.2f} |")
    print(f"\nThe one request that finds Redis dead and trips the circuit (whoami): "
          f"refused {first['refuse']:.1f} ms, blackholed {first['blackhole']:.1f} ms.")


if __name__ == "__main__":
    main()
