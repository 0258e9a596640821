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
import sys
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


def shuffled_latencies(calls: dict, n: int) -> dict[str, list[float]]:
    """Per-call wall times (us) of several calls made in a fresh random order on each
    of `n` rounds: on a loaded machine, a slow moment then falls on every row alike."""
    import random
    import time

    names, out = list(calls), {name: [] for name in calls}
    clock = time.perf_counter_ns
    for _ in range(n):
        random.shuffle(names)
        for name in names:
            start = clock()
            calls[name]()
            out[name].append((clock() - start) / 1000)
    return out


def bound_login(client, username: str, key) -> dict:
    from benchmarks.run import PASSWORD

    return ok(post_json(client, "/auth/login/", {"username": username, "password": PASSWORD},
                        HTTP_DPOP=key.proof("POST", f"{SERVER}/auth/login/"),
                        REMOTE_ADDR="127.0.0.1")).json()


def bench_requests(cfg: Config, report: Report, user) -> dict:
    from django.test import Client

    from benchmarks.harness import cost, latencies, median_summary, summarise
    from benchmarks.run import local_cache_on
    from jwt_sessions.redis import events, local_cache
    from tests.dpop_keys import ProofKey

    key, client = ProofKey(), Client()
    bearer_access = jwt_login(client, user.username)["access"]
    bound_access = bound_login(client, user.username, key)["access"]
    proofs = Proofs(key, "GET", WHOAMI, bound_access)
    rows = {"bearer": request_call(bearer_access, None),
            "dpop": request_call(bound_access, proofs)}
    repeats, n = cfg.n(5, 3), cfg.n(2000, 400)
    results, costs = {}, {}
    for cached in (False, True):
        runs: dict[str, list] = {name: [] for name in rows}
        context = local_cache_on() if cached else None
        if context is not None:
            context.enable()
            local_cache.current()
            assert events.wait_until_healthy(10)
        try:
            for call in rows.values():
                proofs.fill(20)
                latencies(call, 0)
            for rep in range(repeats):
                log(f"requests{' (LOCAL_CACHE)' if cached else ''}, repeat {rep + 1}/{repeats}")
                proofs.fill(n + 40)
                for name, samples in shuffled_latencies(rows, n).items():
                    runs[name].append(summarise(samples))
            proofs.fill(40)
            for name, call in rows.items():
                costs[(name, cached)] = cost(call, repeat=20)
                results[(name, cached)] = median_summary(runs[name])
        finally:
            if context is not None:
                context.disable()
                events.stop()
    report.add("## 1. A DPoP-bound request beside a bearer one",
               "",
               f"`django.test.Client` GET of the DRF view of `benchmarks/site` returning "
               f"`request.user.pk` (full middleware stack); {n} requests per row and repeat, "
               f"the rows' requests in a fresh random order on every round, {repeats} "
               "repeats, medians. The DPoP row sends `Authorization: DPoP` and a "
               "fresh ES256 proof each time (signed before the timer starts). Target: DPoP "
               "<= 1.3x bearer without LOCAL_CACHE.",
               "")
    table = []
    for cached in (False, True):
        base = results[("bearer", cached)].p50
        for name in rows:
            r, c = results[(name, cached)], costs[(name, cached)]
            label = ("DPoP-bound (proof checked, jti claimed)" if name == "dpop"
                     else "bearer") + (", LOCAL_CACHE hit" if cached else "")
            table.append([label, fmt(r.mean), fmt(r.p50), fmt(r.p99), fmt(c.sql, 1),
                          fmt(c.redis, 1), ratio(r.p50 / base)])
    report.table(["request", "us/req", "p50 us", "p99 us", "SQL/req", "Redis RT/req",
                  "p50 / bearer (same cache setting)"], table)
    measured = results[("dpop", False)].p50 / results[("bearer", False)].p50
    added = results[("dpop", False)].p50 - results[("bearer", False)].p50
    report.add(f"Target: DPoP <= 1.3x bearer without LOCAL_CACHE (p50): measured "
               f"{ratio(measured)} ({fmt(added)} us added per request; "
               f"{'met' if measured <= 1.3 else 'NOT met'} in this run).", "")
    return {"results": results, "costs": costs}


def bench_parts(cfg: Config, report: Report, user) -> None:
    """The access check, and its DPoP steps one by one (no HTTP, no view)."""
    from django.test import Client
    from jwt.algorithms import get_default_algorithms

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
    signed, raw_signature = f"{head}.{body}".encode(), _b64decode(signature)

    def signature_only():
        get_default_algorithms()[header_key.alg].verify(signed, header_key.key, raw_signature)

    steps = [
        ("bearer access check (`authenticate_access`: JWT memo + 1 Redis MGET)",
         lambda: authenticate_access(bearer)),
        ("DPoP-bound access check (the same + proof; jti claimed in that round trip)",
         dpop_check),
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
