"""What a login costs, failed or not, and what a forged event costs, beside simplejwt.

    python benchmarks/door_costs.py [--quick] [--output FILE]

1. Failed logins (wrong password, unknown user): bcrypt calls, threads left behind, CPU
   and wall per attempt; then a genuine login's wall time right after a burst of them.
2. Login CPU and wall, jwt_sessions vs simplejwt's TokenObtainPairView, both with
   Django's default password hasher (PBKDF2) and the same user, interleaved run by run.
   CPU is the process's (`time.process_time`: every thread counts).
3. A forged revocation event naming a live session (LOCAL_CACHE on): what it costs the
   process (Redis round trips, SQL) and what a client sees.

Uses the benchmark project (benchmarks/site) on SQLite and `BENCH_REDIS_URL` (default
db 5, FLUSHDB'd). Markdown goes to stdout (and FILE), progress to stderr.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run import (  # noqa: E402 - run.py sets the path and the settings module
    PASSWORD,
    Config,
    Report,
    log,
    make_user,
    ok,
    post_json,
    prepare_database,
    redis_conn,
)

PBKDF2 = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
LOGIN_CPU_TARGET = 1.15  # a login's CPU at most this times simplejwt's, same hasher
SETTLE = 0.3  # seconds to wait after a burst of failed logins for work it queued


class BcryptSpy:
    """Counts bcrypt calls (the real functions still run)."""

    def __init__(self) -> None:
        import bcrypt

        self.calls = {"hashpw": 0, "checkpw": 0}
        self._bcrypt = bcrypt
        self._real = {name: getattr(bcrypt, name) for name in self.calls}
        for name, real in self._real.items():
            setattr(bcrypt, name, self._spy(name, real))

    def _spy(self, name, real):
        def spy(*args):
            self.calls[name] += 1
            return real(*args)

        return spy

    def close(self) -> None:
        for name, real in self._real.items():
            setattr(self._bcrypt, name, real)


def cost(call) -> tuple[float, float]:
    """(CPU ms of the whole process, wall ms) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    call()
    return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


def login_body(username: str, password: str = PASSWORD) -> dict:
    return {"username": username, "password": password}


def bench_failed_logins(cfg: Config, report: Report, user) -> dict:
    from django.test import Client

    client = Client()
    attempts = cfg.n(40, 10)
    spy = BcryptSpy()
    threads_before = threading.active_count()
    try:
        genuine_idle = [cost(lambda: ok(post_json(client, "/auth/login/",
                                                  login_body(user.username))))[1]
                        for _ in range(3)]
        rows, burst_calls = [], 0
        for label, body in [("wrong password", login_body(user.username, "wrong")),
                            ("unknown user", login_body("nobody-" + uuid.uuid4().hex))]:
            before = sum(spy.calls.values())
            costs = [cost(lambda body=body, ip=f"10.9.{i // 250}.{i % 250}": ok(
                post_json(client, "/auth/login/", body, REMOTE_ADDR=ip), 401))
                for i in range(attempts)]
            during = sum(spy.calls.values()) - before
            time.sleep(SETTLE)  # work the burst queued would start now
            left = sum(spy.calls.values()) - before - during
            threads_left = threading.active_count() - threads_before
            after_burst = cost(lambda: ok(post_json(client, "/auth/login/",
                                                    login_body(user.username))))[1]
            burst_calls += during + left
            rows.append([label, str(attempts), str(during), str(left), str(threads_left),
                         f"{statistics.median(c for c, _ in costs):.1f}",
                         f"{statistics.median(w for _, w in costs):.1f}",
                         f"{after_burst:.1f} (idle: {statistics.median(genuine_idle):.1f})"])
    finally:
        spy.close()
    report.add("## 1. Failed logins cost no session work", "",
               f"{attempts} failed logins of each kind from distinct addresses (PBKDF2), "
               "then one genuine login at once. bcrypt calls are counted by a spy: during "
               f"the burst, then in the {SETTLE * 1000:.0f} ms after it (work it left "
               "queued); \"threads left\" is the thread count after the burst minus before "
               "it. The genuine login after the burst is not counted.", "")
    report.table(["attempt", "n", "bcrypt calls in the burst", "bcrypt calls after it",
                  "threads left", "CPU ms (median)", "wall ms (median)",
                  "next genuine login, wall ms"],
                 rows)
    return {"failed_login_bcrypt_calls": burst_calls}


def bench_login_vs_simplejwt(cfg: Config, report: Report, user) -> dict:
    from django.test import Client

    client = Client()
    calls = {
        "jwt_sessions": lambda: ok(post_json(client, "/auth/login/", login_body(user.username))),
        "simplejwt": lambda: ok(post_json(client, "/simplejwt/login/",
                                          login_body(user.username))),
    }
    for call in calls.values():  # warm: the first login of each upgrades nothing, loads all
        call()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    runs = cfg.n(30, 8)
    for _ in range(runs):
        for name, call in calls.items():
            samples[name].append(cost(call))
    redis_conn().flushdb()
    rows, medians = [], {}
    for name, pairs in samples.items():
        cpu = statistics.median(c for c, _ in pairs)
        wall = statistics.median(w for _, w in pairs)
        medians[name] = (cpu, wall)
        rows.append([name, str(runs), f"{cpu:.1f}", f"{wall:.1f}"])
    ours, theirs = medians["jwt_sessions"], medians["simplejwt"]
    rows.append(["ratio jwt_sessions / simplejwt", "", f"{ours[0] / theirs[0]:.3f}x",
                 f"{ours[1] / theirs[1]:.3f}x"])
    report.add("## 2. A successful login beside simplejwt, both with PBKDF2", "",
               f"Django's default hasher ({PBKDF2[0].rsplit('.', 1)[1]}), the same user, "
               f"{runs} logins each, interleaved; CPU is the whole process's.", "")
    report.table(["login", "n", "CPU ms (median)", "wall ms (median)"], rows)
    from jwt_sessions import crypto

    ratio = ours[0] / theirs[0]
    report.add(f"Target: CPU ratio <= {LOGIN_CPU_TARGET:.2f}x: "
               f"{'met' if ratio <= LOGIN_CPU_TARGET else 'NOT met'} ({ratio:.3f}x).", "",
               "What the session secret's bcrypt costs on its own (CPU ms, median of 5): "
               + ", ".join(f"cost {rounds}: {ms:.1f}" for rounds, ms in secret_hash_costs())
               + f" (a login uses cost {crypto.LOGIN_BCRYPT_ROUNDS}; the first database "
               "refresh rehashes at BCRYPT_ROUNDS).", "")
    return {"login_cpu_ratio": ours[0] / theirs[0], "login_wall_ratio": ours[1] / theirs[1]}


def secret_hash_costs() -> list[tuple[int, float]]:
    """(bcrypt cost, CPU ms) of hashing one session secret, at a login's cost and at
    BCRYPT_ROUNDS."""
    from jwt_sessions import crypto
    from jwt_sessions.conf import jwt_settings

    secret = crypto.new_session_secret()
    costs = []
    for rounds in sorted({crypto.LOGIN_BCRYPT_ROUNDS, jwt_settings.BCRYPT_ROUNDS}):
        runs = [cost(lambda rounds=rounds: crypto.hash_session_secret(secret, rounds))[0]
                for _ in range(5)]
        costs.append((rounds, statistics.median(runs)))
    return costs


def bench_forged_event(cfg: Config, report: Report, user) -> dict:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from redis.connection import AbstractConnection

    from jwt_sessions import access, events
    from jwt_sessions.redis import layout, local_cache

    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS,
                             "LOCAL_CACHE": {"max_age": 30, "max_entries": 1000}}
    tokens = ok(post_json(Client(), "/auth/login/", login_body(user.username))).json()
    cache = local_cache.current()
    assert cache is not None and events.wait_until_healthy(5)
    access.authenticate_access(tokens["access"])  # Redis vouches: now in the cache
    assert cache.holds(uuid.UUID(tokens["session_id"]), _jti(tokens["access"]))
    record = layout.event_record(uuid.UUID(tokens["session_id"]))
    forged = cfg.n(100, 20)
    sent, queries = [0], [0]
    real_send = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        if threading.current_thread().name != "jwt_sessions-events":
            sent[0] += 1
        return real_send(self, command, check_health)

    def count_query(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    answers = []
    AbstractConnection.send_packed_command = counting
    try:
        with connection.execute_wrapper(count_query):
            for _ in range(forged):
                redis_conn().publish(layout.events_channel(), b"R" + record)
                sent[0] -= 1  # the attacker's PUBLISH is not ours
                deadline = time.monotonic() + 1
                while cache.holds(uuid.UUID(tokens["session_id"]), _jti(tokens["access"])):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.0005)
                answers.append(ok(Client().get("/whoami/jwt_sessions/",
                                               HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"))
                               .status_code)
    finally:
        AbstractConnection.send_packed_command = real_send
        events.stop()
    report.add("## 3. A forged revocation event", "",
               f"{forged} bare PUBLISHes of a revocation record naming a live session, "
               "LOCAL_CACHE on; after each, one request with the session's access token.", "")
    report.table(["forged events", "Redis round trips per event", "SQL per event",
                  "answers"],
                 [[str(forged), f"{sent[0] / forged:.2f}", f"{queries[0] / forged:.2f}",
                   ", ".join(f"{code} x{answers.count(code)}" for code in set(answers))]])
    return {"forged_event_round_trips": sent[0] / forged}


def _jti(access_token: str) -> str:
    from jwt_sessions.tokens import decode_access_token

    return decode_access_token(access_token).jti


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output")
    args = parser.parse_args()
    cfg = Config(quick=args.quick, http=False, postgres=False)
    prepare_database(cfg)
    from django.conf import settings

    settings.PASSWORD_HASHERS = PBKDF2
    redis_conn().flushdb()
    user = make_user("door-costs")
    report = Report()
    report.add("# Door costs: logins and forged events",
               "", "`python benchmarks/door_costs.py" + (" --quick`" if args.quick else "`"), "")
    for section in (bench_failed_logins, bench_login_vs_simplejwt, bench_forged_event):
        log(section.__name__)
        section(cfg, report, user)
    redis_conn().flushdb()
    report.publish(args.output)


if __name__ == "__main__":
    main()
