"""DPoP's cost: a DPoP-bound access check beside a bearer check (same run, interleaved),
with and without LOCAL_CACHE, what the check is made of, and the login and refresh
overhead.

    python benchmarks/dpop.py [--quick] [--postgres] [--output benchmarks/DPOP_RESULTS.md]

Same site, database and Redis (db 5 by default, `BENCH_REDIS_URL`, FLUSHDB'd) as
`benchmarks/run.py`. Proofs are signed before each timed request (a client's cost, not
the server's): the figures are what the server spends.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import (  # noqa: E402  (the path above first)
    Config,
    Report,
    fmt,
    jwt_login,
    log,
    machine,
    make_user,
    ok,
    post_json,
    prepare_database,
    ratio,
    redis_conn,
    timed,
)

SERVER = "http://testserver"
WHOAMI = "/whoami/jwt_sessions/"


class Proofs:
    """Fresh proofs of one key for one request, signed ahead of the timed calls."""

    def __init__(self, key, htm: str, path: str, token: str | None = None) -> None:
        self.key, self.htm, self.htu, self.token = key, htm, SERVER + path, token
        self.ready: list[str] = []

    def fill(self, count: int) -> None:
        self.ready = [self.key.proof(self.htm, self.htu, token=self.token)
                      for _ in range(count)]

    def next(self) -> str:
        if not self.ready:
            self.fill(1)
        return self.ready.pop()


def request_call(access: str, proofs: Proofs | None):
    from django.test import Client

    client = Client()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {access}"}
    bound = {"HTTP_AUTHORIZATION": f"DPoP {access}"}

    def call():
        extra = bearer if proofs is None else {**bound, "HTTP_DPOP": proofs.next()}
        response = client.get(WHOAMI, **extra)
        if response.status_code != 200:
            raise AssertionError((response.status_code, response.content[:200]))

    return call


@dataclass
class Round:
    """One round of a row: each request's wall time and the CPU time this process spent
    on it (us; `time.process_time`, which a busy neighbour inflates far less than wall
    time). Medians of both, so that a garbage collection lands on no row's figure."""

    wall: list[float]
    cpu: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_p50(self) -> float:
        return statistics.median(self.cpu)


def interleaved_round(calls: dict, n: int) -> dict[str, Round]:
    """`n` requests of each call in a fresh random order: a slow moment of the machine
    then falls on every row alike."""
    import random
    import time

    names = list(calls)
    rounds = {name: Round([], []) for name in calls}
    clock, cpu_clock = time.perf_counter_ns, time.process_time_ns
    for _ in range(n):
        random.shuffle(names)
        for name in names:
            started, cpu_started = clock(), cpu_clock()
            calls[name]()
            cpu_spent, wall_spent = cpu_clock() - cpu_started, clock() - started
            rounds[name].wall.append(wall_spent / 1000)
            rounds[name].cpu.append(cpu_spent / 1000)
    return rounds


def bound_login(client, username: str, key) -> dict:
    from benchmarks.run import PASSWORD

    return ok(post_json(client, "/auth/login/", {"username": username, "password": PASSWORD},
                        HTTP_DPOP=key.proof("POST", f"{SERVER}/auth/login/"),
                        REMOTE_ADDR="127.0.0.1")).json()


TARGET = 1.3  # a DPoP-bound request costs at most this much a bearer one, no LOCAL_CACHE


def bench_requests(cfg: Config, report: Report, user) -> dict:
    from django.test import Client

    from benchmarks.harness import cost, latencies
    from benchmarks.run import local_cache_on
    from jwt_sessions.redis import events, local_cache
    from tests.dpop_keys import ProofKey

    key, client = ProofKey(), Client()
    bearer_access = jwt_login(client, user.username)["access"]
    bound_access = bound_login(client, user.username, key)["access"]
    proofs = Proofs(key, "GET", WHOAMI, bound_access)
    rows = {"bearer": request_call(bearer_access, None),
            "dpop": request_call(bound_access, proofs)}
    rounds_count, n = cfg.n(7, 3), cfg.n(1000, 300)
    rounds: dict[bool, list[dict[str, Round]]] = {False: [], True: []}
    costs = {}
    for cached in (False, True):
        context = local_cache_on() if cached else None
        if context is not None:
            context.enable()
            local_cache.current()
            assert events.wait_until_healthy(10)
        try:
            for call in rows.values():
                proofs.fill(20)
                latencies(call, 0)
            for number in range(rounds_count):
                log(f"requests{' (LOCAL_CACHE)' if cached else ''}, round "
                    f"{number + 1}/{rounds_count}")
                proofs.fill(n + 40)
                rounds[cached].append(interleaved_round(rows, n))
            proofs.fill(40)
            for name, call in rows.items():
                costs[(name, cached)] = cost(call, repeat=20)
        finally:
            if context is not None:
                context.disable()
                events.stop()
    report.add("## 1. A DPoP-bound request beside a bearer one",
               "",
               f"`django.test.Client` GET of the DRF view of `benchmarks/site` returning "
               f"`request.user.pk` (full middleware stack). {rounds_count} rounds; in each, "
               f"{n} requests per row in a fresh random order. The DPoP row sends "
               "`Authorization: DPoP` and a fresh ES256 proof each time (signed before the "
               "timer starts). Per round: the p50 of the wall times and of the CPU times this "
               "process spent (`time.process_time`), and DPoP / bearer for each; the "
               f"verdict is the median of the rounds' ratios. Target: DPoP <= {TARGET}x "
               "bearer without LOCAL_CACHE.",
               "")
    verdicts = {}
    for cached in (False, True):
        table = []
        wall_ratios, cpu_ratios = [], []
        for number, by_row in enumerate(rounds[cached], 1):
            bearer, dpop = by_row["bearer"], by_row["dpop"]
            wall_ratios.append(dpop.p50 / bearer.p50)
            cpu_ratios.append(dpop.cpu_p50 / bearer.cpu_p50)
            table.append([str(number), fmt(bearer.p50), fmt(dpop.p50), ratio(wall_ratios[-1]),
                          fmt(bearer.cpu_p50), fmt(dpop.cpu_p50), ratio(cpu_ratios[-1])])
        wall, cpu = statistics.median(wall_ratios), statistics.median(cpu_ratios)
        added = statistics.median(r["dpop"].p50 - r["bearer"].p50 for r in rounds[cached])
        added_cpu = statistics.median(r["dpop"].cpu_p50 - r["bearer"].cpu_p50
                                      for r in rounds[cached])
        table.append(["**median**", "", "", f"**{ratio(wall)}**", "", "", f"**{ratio(cpu)}**"])
        verdicts[cached] = (wall, cpu, added, added_cpu)
        label = "with LOCAL_CACHE (both rows hit it)" if cached else "without LOCAL_CACHE"
        report.add(f"### {label}", "")
        report.table(["round", "bearer p50 us", "DPoP p50 us", "DPoP / bearer (wall p50)",
                      "bearer CPU p50 us", "DPoP CPU p50 us", "DPoP / bearer (CPU)"], table)
    report.table(["request", "SQL/req", "Redis RT/req"],
                 [[f"{'DPoP-bound' if name == 'dpop' else 'bearer'}"
                   f"{', LOCAL_CACHE hit' if cached else ''}",
                   fmt(c.sql, 1), fmt(c.redis, 1)] for (name, cached), c in costs.items()])
    wall, cpu, added, added_cpu = verdicts[False]
    report.add(f"**Target: DPoP <= {TARGET}x bearer without LOCAL_CACHE.** Median of the "
               f"rounds: wall p50 {ratio(wall)} ({fmt(added)} us added), "
               f"{'met' if wall <= TARGET else 'NOT met'}; CPU {ratio(cpu)} "
               f"({fmt(added_cpu)} us added), {'met' if cpu <= TARGET else 'NOT met'}. "
               f"With LOCAL_CACHE (the DPoP hit still claims its jti in Redis): wall "
               f"{ratio(verdicts[True][0])}, CPU {ratio(verdicts[True][1])}.", "")
    return {"verdicts": verdicts, "costs": costs}


def bench_parts(cfg: Config, report: Report, user) -> None:
    """The access check, and its DPoP steps one by one (no HTTP, no view)."""
    from django.test import Client

    from benchmarks.harness import latencies, summarise
    from jwt_sessions.access import authenticate_access
    from jwt_sessions.dpop import doors, replay
    from jwt_sessions.dpop.proofs import _b64decode, keys_by_header, verify_proof
    from tests.dpop_keys import ProofKey

    key, client = ProofKey(), Client()
    bearer = jwt_login(client, user.username)["access"]
    bound = bound_login(client, user.username, key)["access"]
    claims = authenticate_access(bound)
    uri = SERVER + WHOAMI
    n = cfg.n(3000, 600)
    proofs = Proofs(key, "GET", WHOAMI, bound)

    def checked_proof():
        return verify_proof(proofs.next(), method="GET", uri=uri, access_token=bound)

    def cold_header():  # a header seen for the first time: its JWK parsed
        keys_by_header().clear()
        checked_proof()

    def dpop_check():
        doors.authenticate(bound, doors.Presented(bound, True, proofs.next(), "GET",
                                                  lambda: uri))

    verified = []

    def spend():
        replay.claim_of(verified.pop(), claims.session_id).spend()

    def access_and_claim():  # the bound check's round trip, without its proof
        authenticate_access(bound, replay.claim_of(verified.pop(), claims.session_id))

    sample = proofs.next()
    verify_proof(sample, method="GET", uri=uri, access_token=bound)
    head, body, signature = sample.split(".")
    header_key = keys_by_header()[head]
    signed, raw_signature = f"{head}.{body}".encode(), _b64decode(signature.encode())

    def signature_only():
        header_key.verify(signed, raw_signature)

    steps = [
        ("bearer access check (`authenticate_access`: JWT memo + 1 Redis MGET)",
         lambda: authenticate_access(bearer)),
        ("DPoP-bound access check (the same + proof: jti claimed in that round trip, "
         "signature verified while it is on the wire)", dpop_check),
        ("access check with the jti claim in its round trip (one script, no proof)",
         access_and_claim),
        ("proof verification alone (ES256 verify, claims, htu; header memo hit)", checked_proof),
        ("ES256 signature verification alone (the floor: every proof is verified)",
         signature_only),
        ("proof verification, header not seen before (JWK parsed)", cold_header),
        ("jti claim on its own round trip (after a LOCAL_CACHE hit: SET NX PX)", spend),
    ]
    rows = []
    for label, call in steps:
        proofs.fill(n + 40)
        spends_proofs = call in (spend, access_and_claim)
        verified[:] = [verify_proof(p, method="GET", uri=uri, access_token=bound)
                       for p in proofs.ready[: n + 40]] if spends_proofs else []
        s = summarise(latencies(call, n))
        rows.append([label, fmt(s.mean, 1), fmt(s.p50, 1), fmt(s.p99, 1)])
    report.add("## 2. What the check is made of", "",
               f"Function calls, {n} each, no HTTP and no view.", "")
    report.table(["step", "us mean", "p50 us", "p99 us"], rows)


def bench_token_requests(cfg: Config, report: Report, user) -> None:
    from django.conf import settings
    from django.test import Client, override_settings

    from benchmarks.harness import cost
    from benchmarks.run import PASSWORD
    from tests.dpop_keys import ProofKey

    key, client = ProofKey(), Client()
    fast_bcrypt = override_settings(JWT_SESSIONS={**settings.JWT_SESSIONS, "BCRYPT_ROUNDS": 4})
    login_proofs = Proofs(key, "POST", "/auth/login/")
    refresh_proofs = Proofs(key, "POST", "/auth/refresh/")
    body = {"username": user.username, "password": PASSWORD}

    def login(proofs: Proofs | None):
        def call():
            extra = {} if proofs is None else {"HTTP_DPOP": proofs.next()}
            ok(post_json(client, "/auth/login/", body, REMOTE_ADDR="127.0.0.1", **extra))
        return call

    class Refresh:
        def __init__(self, proofs: Proofs | None) -> None:
            self.proofs = proofs
            self.token = (bound_login(client, user.username, key) if proofs
                          else jwt_login(client, user.username))["refresh"]

        def __call__(self) -> None:
            extra = {} if self.proofs is None else {"HTTP_DPOP": self.proofs.next()}
            self.token = ok(post_json(client, "/auth/refresh/", {"refresh": self.token},
                                      REMOTE_ADDR="127.0.0.1", **extra)).json()["refresh"]

    n_login, n_refresh = cfg.n(200, 50), cfg.n(500, 100)
    results = {}
    with fast_bcrypt:
        ops = [("login (bcrypt cost 4), bearer", login(None), n_login, None),
               ("login (bcrypt cost 4), with a DPoP proof", login(login_proofs), n_login,
                login_proofs),
               ("refresh (Redis hit), bearer session", Refresh(None), n_refresh, None),
               ("refresh (Redis hit), DPoP-bound session", Refresh(refresh_proofs), n_refresh,
                refresh_proofs)]
        for label, call, n, proofs in ops:
            log(f"{label}: {n} ops")
            if proofs is not None:
                proofs.fill(n + 10)
            call()
            spent = cost(call)
            rate, samples = timed(call, n)
            results[label] = (rate, sorted(samples), spent)
    rows = []
    for label, (rate, samples, spent) in results.items():
        base = results[label.replace("with a DPoP proof", "bearer").replace(
            "DPoP-bound session", "bearer session")]
        rows.append([label, fmt(rate, 1), fmt(samples[len(samples) // 2], 0),
                     fmt(spent.sql, 0), fmt(spent.redis, 0),
                     ratio(samples[len(samples) // 2] / base[1][len(base[1]) // 2])])
    report.add("## 3. Login and refresh", "",
               "In-process POSTs through the views (MD5 password hasher; bcrypt of the "
               "session secret at cost 4 so the login row shows the framework's own work).",
               "")
    report.table(["operation", "ops/s", "p50 us", "SQL/op", "Redis RT/op",
                  "p50 / bearer"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--output")
    args = parser.parse_args()
    cfg = Config(quick=args.quick, http=False, postgres=args.postgres)
    prepare_database(cfg)
    redis_conn().flushdb()
    user = make_user("dpop-bench")
    report = Report()
    report.add("# DPoP benchmark results", "", *machine(cfg), "")
    bench_requests(cfg, report, user)
    bench_parts(cfg, report, user)
    bench_token_requests(cfg, report, user)
    report.publish(args.output)


if __name__ == "__main__":
    main()
