"""jwt_sessions benchmarks: one run, same users, same database, same Redis; one report.

    python benchmarks/run.py [--quick] [--postgres] [--no-http] [--output FILE]

Markdown goes to stdout (and FILE), progress to stderr. Uses Redis db 5 by default
(`BENCH_REDIS_URL`), which it FLUSHDBs: never point it at a Redis that holds data.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.site.settings")

PASSWORD = "bench-Pa55word"
SCHEMES = ["none", "floor", "jwt_sessions", "simplejwt", "simplejwt_stateless", "knox",
           "session"]
LABELS = {
    "none": "no authentication (DRF view, AllowAny)",
    "floor": "floor: PyJWT decode + 1 Redis GET",
    "jwt_sessions": "jwt_sessions JWTSessionAuthentication",
    "jwt_sessions_cached": "jwt_sessions with LOCAL_CACHE (hit)",
    "simplejwt": "simplejwt JWTAuthentication",
    "simplejwt_stateless": "simplejwt JWTStatelessUserAuthentication (not revocable)",
    "knox": "knox TokenAuthentication",
    "session": "DRF SessionAuthentication (db sessions)",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Config:
    quick: bool
    http: bool
    postgres: bool

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full


# ---------------------------------------------------------------------------- setup
def prepare_database(cfg: Config) -> None:
    if cfg.postgres:
        os.environ.setdefault("BENCH_DATABASE_URL",
                              "postgres://postgres@127.0.0.1:5432/jwt_sessions_bench")
        _recreate_postgres(os.environ["BENCH_DATABASE_URL"])
    import django

    django.setup()
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    if not cfg.postgres and os.path.exists(name):
        os.remove(name)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _recreate_postgres(url: str) -> None:
    import psycopg

    base, _, dbname = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        conn.execute(f'CREATE DATABASE "{dbname}"')


def redis_conn():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def make_user(username: str, **fields):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username, password=PASSWORD, **fields)


def post_json(client, path: str, body: dict, **extra):
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.content[:300])
    return response


def jwt_login(client, username: str) -> dict:
    return ok(post_json(client, "/auth/login/", {"username": username, "password": PASSWORD},
                        HTTP_USER_AGENT="bench", REMOTE_ADDR="127.0.0.1")).json()


def credentials(user) -> dict[str, tuple[str, str] | None]:
    """scheme -> (header name, value) for the same user; None for no authentication."""
    from django.test import Client

    from benchmarks.site import floor
    from jwt_sessions.tokens import new_jti, sha256_hex

    client = Client()
    jwt_access = jwt_login(client, user.username)["access"]
    simple = ok(post_json(client, "/simplejwt/login/",
                          {"username": user.username, "password": PASSWORD})).json()
    basic = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    knox_token = ok(client.post("/knox/login/", HTTP_AUTHORIZATION=f"Basic {basic}")).json()
    session_client = Client()
    assert session_client.login(username=user.username, password=PASSWORD)
    floor_token = floor.issue(user.pk, new_jti(), sha256_hex(uuid.uuid4().hex))
    return {
        "none": None,
        "floor": ("Authorization", f"Bearer {floor_token}"),
        "jwt_sessions": ("Authorization", f"Bearer {jwt_access}"),
        "simplejwt": ("Authorization", f"Bearer {simple['access']}"),
        "simplejwt_stateless": ("Authorization", f"Bearer {simple['access']}"),
        "knox": ("Authorization", f"Token {knox_token['token']}"),
        "session": ("Cookie", f"sessionid={session_client.cookies['sessionid'].value}"),
    }


def environ(header: tuple[str, str] | None) -> dict[str, str]:
    if header is None:
        return {}
    return {"HTTP_" + header[0].upper().replace("-", "_"): header[1]}


def whoami_call(scheme: str, header, expect: int = 200):
    from django.test import Client

    client, extra, path = Client(), environ(header), f"/whoami/{scheme}/"

    def call():
        response = client.get(path, **extra)
        if response.status_code != expect:
            raise AssertionError((scheme, response.status_code, response.content[:200]))

    return call


# ---------------------------------------------------------------------------- report
class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.add("| " + " | ".join(header) + " |", "|" + "---|" * len(header))
        self.add(*("| " + " | ".join(row) + " |" for row in rows))
        self.add("")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def publish(self, output: str | None) -> None:
        """Print the report, and write it to `output` (a markdown file) when given."""
        sys.stdout.write(self.text())
        if output:
            Path(output).write_text(self.text())


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def versions() -> list[str]:
    names = ["Django", "djangorestframework", "PyJWT", "redis", "django-redis", "bcrypt",
             "djangorestframework_simplejwt", "django-rest-knox", "gunicorn"]
    import jwt_sessions

    found = [f"jwt_sessions {jwt_sessions.__version__} (this tree)"]
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return found


def machine(cfg: Config) -> list[str]:
    from django.conf import settings
    from django.db import connection

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    try:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        wrk = wrk.split(" [")[0].strip() or "wrk"
    except OSError:
        wrk = "wrk not installed"
    db = (f"PostgreSQL {connection.pg_version}" if cfg.postgres
          else f"SQLite {sqlite3.sqlite_version} (file)")
    return [
        f"- Date: {date.today().isoformat()}; mode: {'quick' if cfg.quick else 'full'}",
        f"- Machine: `nproc` = {os.cpu_count()}, CPU: {cpu}, Linux {platform.release()}; "
        f"load average at start {os.getloadavg()[0]:.1f} (other jobs shared the cores)",
        f"- Python {platform.python_version()}; database: {db}; "
        f"Redis {redis_conn().info('server')['redis_version']} at "
        f"{settings.CACHES['default']['LOCATION']}; {wrk}",
        "- Versions: " + ", ".join(versions()),
    ]


# ---------------------------------------------------------------------------- 1. requests
def bench_requests(cfg: Config, report: Report, creds: dict) -> dict:
    from benchmarks.harness import cost, latencies, median_summary, summarise

    calls = {scheme: whoami_call(scheme, creds[scheme]) for scheme in SCHEMES}
    runs: dict[str, list] = {scheme: [] for scheme in SCHEMES}
    repeats, n = cfg.n(5, 3), cfg.n(2000, 400)
    for rep in range(repeats):
        log(f"in-process requests, repeat {rep + 1}/{repeats} ({n} requests per scheme)")
        for scheme in SCHEMES:  # interleaved, so a noisy neighbour hits every scheme alike
            runs[scheme].append(summarise(latencies(calls[scheme], n)))
    results = {scheme: median_summary(runs[scheme]) for scheme in SCHEMES}
    costs = {scheme: cost(calls[scheme], repeat=20) for scheme in SCHEMES}
    floor, simple = results["floor"].p50, results["simplejwt"].p50
    report.add("## 1. Authenticated request, in-process",
               "",
               f"`django.test.Client` GET of a DRF view returning `request.user.pk`, through "
               f"the full middleware stack; {n} requests per scheme, {repeats} interleaved "
               "repeats, the median of each figure. Ratios use the p50 (robust to other "
               "work on the machine, which inflates the means and p99s). Time/floor: lower "
               "is better (target <= 1.1x); speed-up vs simplejwt: higher is better (target "
               ">= 1.2x; >= 1.7x over knox).",
               "")
    rows = []
    for scheme in SCHEMES:
        r, c = results[scheme], costs[scheme]
        spread = [run.mean for run in runs[scheme]]
        rows.append([LABELS[scheme], fmt(r.mean), f"{fmt(min(spread))}-{fmt(max(spread))}",
                     fmt(r.p50), fmt(r.p99), fmt(r.per_second), fmt(c.sql, 1),
                     fmt(c.redis, 1), ratio(r.p50 / floor), ratio(simple / r.p50)])
    report.table(["scheme", "us/req", "us/req range", "p50 us", "p99 us", "req/s", "SQL/req",
                  "Redis RT/req", "time / floor", "speed-up vs simplejwt"], rows)
    return {"results": results, "costs": costs}


LOCAL_CACHE = {"max_age": timedelta(seconds=30), "max_entries": 10_000}


def local_cache_on():
    from django.conf import settings
    from django.test import override_settings

    return override_settings(JWT_SESSIONS={**settings.JWT_SESSIONS, "LOCAL_CACHE": LOCAL_CACHE})


def bench_local_cache(cfg: Config, report: Report, creds: dict) -> dict:
    """Issue 14: jwt_sessions with LOCAL_CACHE on, beside the stateless check and the floor
    (interleaved in one block, as in table 1)."""
    from benchmarks.harness import cost, latencies, median_summary, summarise
    from jwt_sessions import events
    from jwt_sessions.redis import local_cache

    schemes = ["floor", "simplejwt_stateless", "jwt_sessions", "jwt_sessions_cached"]
    repeats, n = cfg.n(5, 3), cfg.n(2000, 400)
    runs: dict[str, list] = {scheme: [] for scheme in schemes}
    with local_cache_on():
        local_cache.current()
        assert events.wait_until_healthy(10)
        calls = {scheme: whoami_call(scheme.replace("_cached", ""), creds[
            scheme.replace("_cached", "")]) for scheme in schemes}
        plain = calls["jwt_sessions"]

        def uncached():  # the same request with the cache emptied first: Redis answers
            local_cache.current().clear()
            plain()

        calls["jwt_sessions"] = uncached
        for rep in range(repeats):
            log(f"LOCAL_CACHE block, repeat {rep + 1}/{repeats}")
            for scheme in schemes:
                runs[scheme].append(summarise(latencies(calls[scheme], n)))
        costs = {scheme: cost(calls[scheme], repeat=20) for scheme in schemes}
        cache = local_cache.current()
        hits = cache.hits
    events.stop()
    results = {scheme: median_summary(runs[scheme]) for scheme in schemes}
    floor, stateless = results["floor"].p50, results["simplejwt_stateless"].p50
    report.add("## 1c. LOCAL_CACHE: a repeat request answered from memory",
               "",
               f"Same view and client as table 1, {n} requests per scheme, {repeats} "
               "interleaved repeats (medians), all inside one `LOCAL_CACHE` setting "
               f"(`max_age` 30 s, `max_entries` 10,000; {hits:,} cache hits in the run). "
               "'cache miss' empties the cache before each request, so Redis answers (and "
               "the token is remembered again). Targets: cached <= 1.15x the stateless "
               "row and <= 0.6x the floor (p50).",
               "")
    labels = {**LABELS, "jwt_sessions": "jwt_sessions with LOCAL_CACHE (cache miss)"}
    rows = []
    for scheme in schemes:
        r, c = results[scheme], costs[scheme]
        rows.append([labels[scheme], fmt(r.mean), fmt(r.p50), fmt(r.p99), fmt(r.per_second),
                     fmt(c.sql, 1), fmt(c.redis, 1), ratio(r.p50 / floor),
                     ratio(r.p50 / stateless)])
    report.table(["scheme", "us/req", "p50 us", "p99 us", "req/s", "SQL/req", "Redis RT/req",
                  "time / floor", "time / stateless"], rows)
    return {"results": results, "costs": costs}


def bench_local_cache_scale(cfg: Config, report: Report) -> None:
    """Hit rate and memory of one process's cache with 10,000 and 1,000,000 live sessions.

    The cache class itself, fed (session id, jti) lookups the way authenticate_access
    does (keep after a miss), with the events taken as healthy: this measures the bound
    and the LRU, not the network."""
    import random
    import tracemalloc

    from jwt_sessions import events
    from jwt_sessions.redis.local_cache import LocalCache

    real_healthy = events.healthy
    events.healthy = lambda: True
    rows = []
    lookups = cfg.n(1_000_000, 200_000)
    try:
        for live in (10_000, 1_000_000):
            log(f"local cache at {live:,} live sessions")
            rng = random.Random(1)
            for max_entries in (10_000, 100_000):
                for traffic in ("uniform", "skewed (1/rank)"):
                    # Session n is UUID(int=n) with jti "j<n>"; skewed: P(rank) ~ 1/rank
                    # (a few busy clients, a long tail), drawn as live ** U.
                    picks = ([rng.randrange(live) for _ in range(lookups)]
                             if traffic == "uniform" else
                             [int(live ** rng.random()) - 1 for _ in range(lookups)])
                    tracemalloc.start()
                    cache = LocalCache(max_age=30, max_entries=max_entries)
                    for n in picks:
                        sid, jti = uuid.UUID(int=n), f"j{n:015d}"  # 16 chars, as ours
                        if not cache.holds(sid, jti):
                            cache.keep(sid, jti, cache.version())
                    held, _peak = tracemalloc.get_traced_memory()
                    tracemalloc.stop()
                    per_entry = held / max(1, len(cache))
                    rows.append([fmt(live), fmt(max_entries), traffic, fmt(len(cache)),
                                 f"{100 * cache.hits / lookups:.1f}%",
                                 f"{held / 2**20:.1f} MiB", fmt(per_entry)])
    finally:
        events.healthy = real_healthy
    memo_entries, memo_bytes = verified_memo_memory()
    report.add("## 6. LOCAL_CACHE at scale: hit rate and memory per process",
               "",
               f"{lookups:,} access checks per case against one process's cache, sessions "
               "drawn uniformly or by popularity (weight 1/rank). Memory: what the cache "
               "holds (tracemalloc: entries, session UUIDs, jti strings), per process. A "
               "miss costs what table 1's jwt_sessions row costs (one Redis round trip); "
               "`max_age` expiry is not exercised here (the runs last seconds).",
               "")
    report.table(["live sessions", "max_entries", "traffic", "entries held", "hit rate",
                  "cache memory", "bytes/entry"], rows)
    report.add(f"The verified-token memo of tokens.py (on whether or not LOCAL_CACHE is) holds "
               f"at most {memo_entries:,} tokens: {memo_bytes / 2**20:.1f} MiB when full "
               f"({memo_bytes / memo_entries:,.0f} bytes per token with its claims).", "")


def verified_memo_memory() -> tuple[int, int]:
    """(entries, bytes) of a full verified-token memo (tracemalloc)."""
    import tracemalloc

    from django.utils import timezone

    from jwt_sessions import tokens

    now = timezone.now()
    signed = [tokens.encode_access_token(n, uuid.uuid4(), tokens.new_jti(), now,
                                         auth_time=now, amr=["pwd"])[0]
              for n in range(tokens._VERIFIED_MEMO_SIZE)]
    memo = tokens.verified_tokens()
    memo.clear()
    tracemalloc.start()
    for token in signed:
        tokens.decode_access_token(token)
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    memo.clear()
    # The token strings themselves were allocated before tracing: add them.
    return len(signed), held + sum(sys.getsizeof(token) for token in signed)


def bench_events(cfg: Config, report: Report) -> dict:
    """Revocation events across processes (benchmarks/events_latency.py, which runs a
    redis-server of its own); its tables join this report."""
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        markdown, figures = Path(workdir, "events.md"), Path(workdir, "events.json")
        log("revocation events across processes (events_latency.py)")
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "events_latency.py"),
                        "--output", str(markdown), "--json", str(figures),
                        *(["--quick"] if cfg.quick else [])],
                       check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        lines = markdown.read_text().splitlines()
        result = json.loads(figures.read_text())
    body = lines[lines.index(next(line for line in lines if line.startswith("## "))):]
    report.add(*(line.replace("## ", "## 9. ", 1) if line.startswith("## ") else line
                 for line in body), "")
    return result


def bench_http(cfg: Config, report: Report, creds: dict) -> dict | None:
    from benchmarks import loadtest

    if not cfg.http or not loadtest.available():
        report.add("## 1b. Over HTTP", "", "Skipped (--no-http, or wrk/gunicorn missing).", "")
        return None
    seconds, connections = cfg.n(5, 2), 8
    results = {}
    gateway, token = introspection_credentials(creds)
    with loadtest.gunicorn(workers=2) as base:
        for scheme in SCHEMES:
            header = creds[scheme]
            log(f"wrk {scheme} {seconds}s")
            results[scheme] = loadtest.wrk(
                f"{base}/whoami/{scheme}/", f"{header[0]}: {header[1]}" if header else
                "X-Bench: none", seconds, connections)
        log(f"wrk introspect {seconds}s")
        results[INTROSPECT] = loadtest.wrk(f"{base}/auth/introspect/", gateway, seconds,
                                           connections, form=f"token={token}")
    floor, simple = results["floor"].per_second, results["simplejwt"].per_second
    report.add("## 1b. Authenticated request over HTTP",
               "",
               f"gunicorn (2 sync workers) on 127.0.0.1, wrk -t1 -c{connections} "
               f"-d{seconds}s, same machine (wrk shares the 2 cores with gunicorn). The "
               "introspection row checks the access token a whoami row sends, for a "
               "gateway account: two token checks and the caller's permission (user row "
               "and permission queries) per request.",
               "")
    rows = [[LABELS.get(s, s), fmt(r.per_second), fmt(r.p50_ms, 2), fmt(r.p99_ms, 2),
             str(r.errors), ratio(floor / r.per_second), ratio(r.per_second / simple)]
            for s, r in results.items()]
    report.table(["scheme", "req/s", "p50 ms", "p99 ms", "non-2xx", "time / floor",
                  "speed-up vs simplejwt"], rows)
    return results


INTROSPECT = ("jwt_sessions introspect/ (RFC 7662): a gateway's Bearer, form POST of "
              "the user's access token")


def introspection_credentials(creds: dict) -> tuple[str, str]:
    """(Authorization header of a gateway account allowed to introspect, the access token
    it asks about: the jwt_sessions user's)."""
    from django.contrib.auth.models import Permission
    from django.test import Client

    account = make_user("bench-gateway")
    account.user_permissions.add(Permission.objects.get(codename="introspect_session"))
    access = jwt_login(Client(), account.username)["access"]
    return f"Authorization: Bearer {access}", creds["jwt_sessions"][1].split()[1]


# ---------------------------------------------------------------------------- 2. login, refresh
class Chain:
    """A refresh token that each call rotates (jwt_sessions or simplejwt)."""

    def __init__(self, path: str, refresh: str, access: str | None = None) -> None:
        from django.test import Client

        self.client, self.path, self.refresh, self.access = Client(), path, refresh, access

    def __call__(self) -> None:
        data = ok(post_json(self.client, self.path, {"refresh": self.refresh},
                            REMOTE_ADDR="127.0.0.1")).json()
        self.refresh, self.access = data["refresh"], data.get("access")


def drop_from_redis(chain: Chain, user_pk) -> None:
    """Make the next refresh of `chain` a Redis miss (untimed preparation)."""
    from jwt_sessions.redis.mirror import SessionKeys
    from jwt_sessions.redis.store import store
    from jwt_sessions.tokens import decode_access_token, parse_refresh_token

    token = parse_refresh_token(chain.refresh)
    claims = decode_access_token(chain.access)
    store.forget([SessionKeys(token.session_id, token.sha256, claims.jti, user_pk)],
                 tombstone=False)


def timed(call, n: int, prepare=None) -> tuple[float, list[float]]:
    """(ops/s, per-op us) with optional untimed preparation before each op."""
    samples = []
    for _ in range(n):
        if prepare:
            prepare()
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return 1e6 / statistics.fmean(samples), samples


def bench_login_refresh(cfg: Config, report: Report, user) -> dict:
    from django.conf import settings
    from django.test import Client, override_settings

    from benchmarks.harness import cost

    fast_bcrypt = override_settings(JWT_SESSIONS={**settings.JWT_SESSIONS, "BCRYPT_ROUNDS": 4})
    client = Client()
    basic = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    ops = {
        "jwt_sessions login (bcrypt cost 12, default)":
            (lambda: jwt_login(client, user.username), cfg.n(6, 3), None, None),
        "jwt_sessions login (bcrypt cost 4)":
            (lambda: jwt_login(client, user.username), cfg.n(200, 50), None, fast_bcrypt),
        "simplejwt login (TokenObtainPairView)":
            (lambda: ok(post_json(client, "/simplejwt/login/",
                                  {"username": user.username, "password": PASSWORD})),
             cfg.n(200, 50), None, None),
        "knox login (LoginView, Basic auth)":
            (lambda: ok(client.post("/knox/login/", HTTP_AUTHORIZATION=f"Basic {basic}")),
             cfg.n(200, 50), None, None),
    }
    login = jwt_login(client, user.username)
    hit = Chain("/auth/refresh/", login["refresh"], login["access"])
    ops["jwt_sessions refresh, Redis hit"] = (hit, cfg.n(500, 100), None, None)
    slow_login = jwt_login(client, user.username)
    slow = Chain("/auth/refresh/", slow_login["refresh"], slow_login["access"])
    ops["jwt_sessions refresh, database fallback (bcrypt cost 12, confirmed once)"] = (
        slow, cfg.n(6, 3), lambda: drop_from_redis(slow, user.pk), None)
    with fast_bcrypt:
        fast_login = jwt_login(client, user.username)
    fast = Chain("/auth/refresh/", fast_login["refresh"], fast_login["access"])
    ops["jwt_sessions refresh, database fallback (bcrypt cost 4, confirmed once)"] = (
        fast, cfg.n(200, 50), lambda: drop_from_redis(fast, user.pk), fast_bcrypt)
    simple = ok(post_json(client, "/simplejwt/login/",
                          {"username": user.username, "password": PASSWORD})).json()
    ops["simplejwt refresh (rotation + blacklist)"] = (
        Chain("/simplejwt/refresh/", simple["refresh"]), cfg.n(200, 50), None, None)

    results = {}
    for name, (call, n, prepare, context) in ops.items():
        log(f"{name}: {n} ops")
        if context is not None:
            context.enable()
        try:
            call()  # warm up
            if prepare:
                prepare()
            spent = cost(call)
            rate, samples = timed(call, n, prepare)
        finally:
            if context is not None:
                context.disable()
        results[name] = (rate, sorted(samples), spent)
    simple_refresh = results["simplejwt refresh (rotation + blacklist)"][0]
    report.add("## 2. Login and refresh",
               "",
               "In-process POSTs through the views (throttles off for every scheme; the "
               "password hasher is MD5 for all, so the figures are the frameworks' own "
               "work; jwt_sessions also bcrypts its session secret at login, and confirms it "
               "on the first database-fallback refresh of a session in a process; later "
               "fallbacks skip bcrypt). ops/s from the mean; SQL and Redis round trips "
               "from one op.",
               "")
    rows = [[name, fmt(rate, 1), fmt(samples[len(samples) // 2] / 1000, 2),
             fmt(spent.sql, 0), fmt(spent.redis, 0), ratio(rate / simple_refresh)]
            for name, (rate, samples, spent) in results.items()]
    report.table(["operation", "ops/s", "p50 ms", "SQL/op", "Redis RT/op",
                  "ops/s vs simplejwt refresh"], rows)
    return results


# ---------------------------------------------------------------------------- 2c. trust
def forged_refresh(session_id: uuid.UUID) -> str:
    """A well-formed refresh token naming `session_id`, with a made-up secret."""
    raw = session_id.bytes + os.urandom(64)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def bench_trust(cfg: Config, report: Report, user) -> dict:
    """Issue 11: what strangers and revoked tokens cost, and login with Django's own hasher."""
    import bcrypt
    from django.conf import settings
    from django.test import Client, override_settings

    from benchmarks.harness import cost

    client = Client()
    bcrypt_runs = {"n": 0}
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(*args):
        bcrypt_runs["n"] += 1
        return real_checkpw(*args)

    bcrypt.checkpw = counting_checkpw
    try:
        real = uuid.UUID(jwt_login(client, user.username)["session_id"])

        def refuse(session_id):
            return lambda: ok(post_json(client, "/auth/refresh/",
                                        {"refresh": forged_refresh(session_id)},
                                        REMOTE_ADDR="127.0.0.1"), 401)

        calls = {"forged refresh, real session id": refuse(real),
                 "forged refresh, unknown session id": refuse(uuid.uuid4())}
        spent = {label: cost(call) for label, call in calls.items()}  # warms up too
        samples: dict[str, list[float]] = {label: [] for label in calls}
        runs = dict.fromkeys(calls, 0)
        log(f"forged refreshes: {cfg.n(400, 80)} of each, interleaved")
        for _ in range(cfg.n(400, 80)):  # interleaved: machine noise hits both alike
            for label, call in calls.items():
                before = bcrypt_runs["n"]
                rate, (sample,) = timed(call, 1)
                samples[label].append(sample)
                runs[label] += bcrypt_runs["n"] - before
        forged = {label: (1e6 / statistics.fmean(samples[label]), sorted(samples[label]),
                          spent[label], runs[label]) for label in calls}
    finally:
        bcrypt.checkpw = real_checkpw

    revoked = jwt_login(client, user.username)
    header = {"HTTP_AUTHORIZATION": f"Bearer {revoked['access']}"}
    ok(post_json(client, "/auth/logout/", {}, **header), 204)
    refused = cost(lambda: ok(client.get("/whoami/jwt_sessions/", **header), 401))

    default_hasher = override_settings(PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher"])
    logins = {}
    with default_hasher:
        pbkdf2_user = make_user("bench-pbkdf2")
        body = {"username": pbkdf2_user.username, "password": PASSWORD}
        for label, path in (("jwt_sessions login (PBKDF2 + bcrypt cost 12)", "/auth/login/"),
                            ("simplejwt login (PBKDF2)", "/simplejwt/login/")):
            def call(path=path):
                return ok(post_json(client, path, body, REMOTE_ADDR="127.0.0.1"))

            call()
            log(f"{label}: {cfg.n(12, 4)} ops")
            logins[label] = timed(call, cfg.n(12, 4))
    assert settings.JWT_SESSIONS.get("BCRYPT_ROUNDS", 12) == 12, "cost 12 is the default"

    report.add("## 2c. Trust boundaries",
               "",
               "Forged refresh tokens (a real or an unknown session id, 64 random bytes): "
               "answered `401 refresh_token_invalid` by the keyed secret check, with no "
               "bcrypt. A revoked session's access token: refused from Redis's tombstone. "
               "Login with Django's default hasher (PBKDF2), bcrypt of the session secret "
               "on a worker thread meanwhile.",
               "")
    rows = [[label, fmt(rate, 1), fmt(samples[len(samples) // 2] / 1000, 2),
             fmt(spent.sql, 0), fmt(spent.redis, 0), str(runs)]
            for label, (rate, samples, spent, runs) in forged.items()]
    rows.append(["revoked access token (whoami)", "", "", fmt(refused.sql, 0),
                 fmt(refused.redis, 0), "0"])
    report.table(["operation", "ops/s", "p50 ms", "SQL/op", "Redis RT/op", "bcrypt runs"],
                 rows)
    report.add("")
    simple_p50 = statistics.median(logins["simplejwt login (PBKDF2)"][1])
    report.table(["login, Django's default hasher", "p50 ms", "vs simplejwt"],
                 [[label, fmt(statistics.median(samples) / 1000, 1),
                   ratio(statistics.median(samples) / simple_p50)]
                  for label, (_rate, samples) in logins.items()])
    return {"forged": forged, "revoked": refused, "logins": logins}


def bench_refresh_after_flush(cfg: Config, report: Report, user) -> None:
    """Issue 8: every client refreshes right after Redis lost everything (FLUSHDB)."""
    from django.test import Client

    client = Client()
    k = cfg.n(6, 3)
    chains = []
    for _ in range(k):
        data = jwt_login(client, user.username)
        chains.append(Chain("/auth/refresh/", data["refresh"], data["access"]))
    redis_conn().flushdb()
    log(f"refresh after FLUSHDB: {k} sessions")
    start = time.perf_counter()
    for chain in chains:
        chain()
    first = k / (time.perf_counter() - start)
    start = time.perf_counter()
    for chain in chains:
        chain()
    second = k / (time.perf_counter() - start)
    report.add("## 2b. Refresh right after Redis lost its data",
               "",
               f"{k} sessions (bcrypt cost 12), `FLUSHDB` of the benchmark's Redis db (the "
               "same as FLUSHALL for this app; never FLUSHALL on a shared server), then each "
               "session refreshes once, and once more.",
               "")
    report.table(["figure", "refresh/s"],
                 [["first refresh of each session after the flush (database + bcrypt)",
                   fmt(first, 1)],
                  ["next refresh of the same sessions (rehydrated: Redis hit)",
                   fmt(second, 1)]])


# ---------------------------------------------------------------------------- 3. logout
def open_sessions(user, count: int, **jwt_settings) -> list:
    """`count` sessions of `user` through the Python API (bcrypt cost 4: set-up only)."""
    from django.conf import settings
    from django.test import override_settings

    from jwt_sessions.services import issue_tokens

    with override_settings(JWT_SESSIONS={**settings.JWT_SESSIONS, "BCRYPT_ROUNDS": 4,
                                         **jwt_settings}):
        return [issue_tokens(user) for _ in range(count)]


def bench_logout(cfg: Config, report: Report) -> dict:
    from django.test import Client

    from benchmarks.harness import cost
    from jwt_sessions.models import Session
    from jwt_sessions.redis.store import store

    rows, figures = [], {}
    repeats = cfg.n(3, 1)
    for count in ([1, 10, 100, 1000] if not cfg.quick else [1, 10, 100]):
        user = make_user(f"logout-{count}")
        log(f"logout with {count} sessions, {repeats} times")
        took: dict[str, list[float]] = {"logout": [], "logout-all": []}
        spent = {}
        for _ in range(repeats):
            pairs = open_sessions(user, count + 1)  # one more: logout takes one first
            client = Client()
            for label, path, pair in (("logout", "/auth/logout/", pairs[0]),
                                      ("logout-all", "/auth/logout-all/", pairs[1])):
                def call(path=path, pair=pair, times=took[label], client=client):
                    start = time.perf_counter()
                    ok(post_json(client, path, {},
                                 HTTP_AUTHORIZATION=f"Bearer {pair.access}"), 204)
                    times.append((time.perf_counter() - start) * 1000)

                spent[label] = cost(call)
            assert not Session.objects.active().filter(user=user).exists()
            assert not store.indexed_session_ids(user.pk)
        for label in ("logout", "logout-all"):
            ms = statistics.median(took[label])
            figures[label, count] = (ms, spent[label].redis)
            rows.append([label, str(count + 1 if label == "logout" else count), fmt(ms, 2),
                         f"{fmt(min(took[label]), 1)}-{fmt(max(took[label]), 1)}",
                         fmt(spent[label].sql, 0), fmt(spent[label].redis, 0),
                         fmt(spent[label].redis - 1, 0)])
    report.add("## 3. Logout and logout-all",
               "",
               "One POST through the view (its authentication included: 1 Redis round trip), "
               "median of a few repeats; 'revoke RT' = the revocation's own round trips. "
               "Sessions opened through `issue_tokens`.",
               "")
    report.table(["operation", "sessions of the user", "ms", "ms range", "SQL",
                  "Redis RT (request)", "revoke RT"], rows)
    return figures


# ---------------------------------------------------------------------------- 4. memory
def bench_memory(cfg: Config, report: Report) -> float:
    from benchmarks.site import floor
    from jwt_sessions.redis import layout
    from jwt_sessions.redis.store import store
    from jwt_sessions.tokens import decode_access_token, parse_refresh_token

    conn = redis_conn()

    def usage(key: str) -> int:
        return conn.memory_usage(key, samples=0) or 0

    rows, per_session = [], {}
    cases = {"1": (1, {}, {}), "3": (3, {}, {}), "10": (10, {}, {}),
             "1 (user pk 1234567, SESSION_MAX_LIFETIME set)":
                 (1, {"pk": 1_234_567}, {"SESSION_MAX_LIFETIME": timedelta(days=90)})}
    for label, (count, fields, options) in cases.items():
        user = make_user(f"memory-{len(rows)}-{label}"[:150], **fields)
        pairs = open_sessions(user, count, **options)
        index = layout.user_index_key(user.pk)
        own = []
        for pair in pairs:
            token = parse_refresh_token(pair.refresh)
            jti = decode_access_token(pair.access).jti
            keys = [layout.session_key(token.session_id, token.sha256),
                    layout.access_key(token.session_id, jti)]
            sizes = [usage(key) for key in keys]
            own.append(sum(sizes))
            if label == "1":
                for key, size in zip(keys, sizes, strict=True):
                    rows.append([f"`{key}`", f"`{conn.get(key).decode()}`", str(size)])
                rows.append([f"`{index}` ({conn.type(index).decode()})",
                             f"{len(store.indexed_session_ids(user.pk))} member(s)",
                             str(usage(index))])
        per_session[label] = statistics.fmean(own) + usage(index) / count
    report.add("## 4. Redis memory per session",
               "",
               "`MEMORY USAGE <key> SAMPLES 0` of every key an active session holds, plus "
               "its share of the user index. Keys of a user with one session:",
               "")
    report.table(["key", "value", "bytes"], rows)
    jti = uuid.uuid4().hex[:22]
    floor.issue(1, jti, "0" * 64)
    floor_bytes = usage(f"{floor.PREFIX}a:{jti}") + usage(f"{floor.PREFIX}r:{'0' * 64}")
    report.table(
        ["sessions per user", "bytes per session (index share included)",
         "projected for 1,000,000 sessions"],
        [[label, fmt(size), f"{fmt(size * 1e6 / 2**20)} MiB"]
         for label, size in per_session.items()]
        + [["floor (two keys: access, refresh)", fmt(floor_bytes),
            f"{fmt(floor_bytes * 1e6 / 2**20)} MiB"]])
    return per_session["1"]


# ---------------------------------------------------------------------------- 5. Redis dead
def dead_redis(**extra):
    from django.conf import settings
    from django.test import override_settings

    return override_settings(JWT_SESSIONS={**settings.JWT_SESSIONS, "CACHE_ALIAS": "dead",
                                           **extra})


def bench_redis_dead(cfg: Config, report: Report, user, floor_us: float | None,
                     simple_us: float | None) -> None:
    from benchmarks.harness import cost, latencies, summarise
    from jwt_sessions.redis.mirror import circuit

    access = jwt_login(__import__("django.test").test.Client(), user.username)["access"]
    header = ("Authorization", f"Bearer {access}")
    rows = []
    for policy, expect in (("database", 200), ("deny", 503)):
        with dead_redis(REDIS_FAILURE_POLICY=policy):
            call = whoami_call("jwt_sessions", header, expect)
            log(f"Redis dead, policy {policy}")
            summary = summarise(latencies(call, cfg.n(1000, 200)))
            spent = cost(call, repeat=20)
        circuit.reset()
        rows.append([f"jwt_sessions, policy \"{policy}\" ({expect})", fmt(summary.mean),
                     fmt(summary.p50), fmt(summary.p99), fmt(spent.sql, 1),
                     ratio(summary.p50 / floor_us) if floor_us else "-",
                     ratio(simple_us / summary.p50) if simple_us else "-"])
    report.add("## 5. Authentication with Redis dead",
               "",
               "The cache alias points at a closed loopback port (connection refused); the "
               "circuit breaker then fails fast for `REDIS_RETRY_INTERVAL`. Same whoami view "
               "in-process; ratios (p50) against the live-Redis floor and simplejwt of "
               "table 1.",
               "")
    report.table(["case", "us/req", "p50 us", "p99 us", "SQL/req", "time / floor",
                  "speed-up vs simplejwt"], rows)


def bench_fallback_gate(cfg: Config, report: Report, user) -> None:
    """Issue 8: requests/s and database queries/s with Redis dead, bounded or not."""
    from django.db import connection
    from django.test import Client

    from benchmarks.harness import counting_queries
    from jwt_sessions.redis.mirror import circuit

    access = jwt_login(Client(), user.username)["access"]
    threads, seconds = 8, cfg.n(3, 1)
    rows = []
    for label, bound in (("bounded (MAX_CONCURRENT_DB_FALLBACKS=2)", 2),
                         ("unbounded (10,000)", 10_000)):
        statuses: dict[int, int] = {}
        queries = [0]
        lock = threading.Lock()
        deadline = time.monotonic() + seconds

        def worker(statuses=statuses, queries=queries, lock=lock, deadline=deadline):
            client, seen = Client(), {}
            try:
                with counting_queries(queries):
                    while time.monotonic() < deadline:
                        code = client.get("/whoami/jwt_sessions/",
                                          HTTP_AUTHORIZATION=f"Bearer {access}").status_code
                        seen[code] = seen.get(code, 0) + 1
            finally:
                connection.close()
            with lock:
                for code, n in seen.items():
                    statuses[code] = statuses.get(code, 0) + n

        log(f"Redis dead, {threads} threads, {label}")
        with dead_redis(MAX_CONCURRENT_DB_FALLBACKS=bound):
            pool = [threading.Thread(target=worker) for _ in range(threads)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
        circuit.reset()
        total = sum(statuses.values())
        rows.append([label, fmt(total / seconds), fmt(statuses.get(200, 0) / seconds),
                     fmt(statuses.get(503, 0) / seconds), fmt(queries[0] / seconds),
                     ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))])
    report.add("## 5b. Redis dead under load: the database-fallback bound",
               "",
               f"{threads} threads in one process for {seconds} s, each looping on the "
               "whoami view (the bound is per process; the GIL limits true overlap, so a "
               "multi-worker server sees more of it).",
               "")
    report.table(["fallback bound", "req/s", "200/s", "503/s", "SQL queries/s",
                  "statuses"], rows)


# ---------------------------------------------------------------------------- targets
def targets(report: Report, figures: dict, at: int) -> None:
    """Issue 7's targets, checked against this run's own figures (inserted at line `at`)."""
    rows = []

    def check(name: str, measured: str, met: bool) -> None:
        rows.append([name, measured, "met" if met else "NOT met"])

    if "requests" in figures:
        results, costs = figures["requests"]["results"], figures["requests"]["costs"]
        ours = results["jwt_sessions"].p50
        check("in-process <= 1.1x the floor (p50)",
              ratio(ours / results["floor"].p50), ours / results["floor"].p50 <= 1.1)
        check("in-process >= 1.2x faster than simplejwt (p50)",
              ratio(results["simplejwt"].p50 / ours), results["simplejwt"].p50 / ours >= 1.2)
        check("in-process >= 1.7x faster than knox (p50)",
              ratio(results["knox"].p50 / ours), results["knox"].p50 / ours >= 1.7)
        spent = costs["jwt_sessions"]
        check("0 SQL and exactly 1 Redis round trip per request on a hit",
              f"{spent.sql:g} SQL, {spent.redis:g} RT", spent.sql == 0 and spent.redis == 1)
    if figures.get("http"):
        http = figures["http"]
        ours = http["jwt_sessions"].per_second
        check("over HTTP ahead of simplejwt and knox (req/s)",
              f"{fmt(ours)} vs {fmt(http['simplejwt'].per_second)} / "
              f"{fmt(http['knox'].per_second)}",
              ours > max(http["simplejwt"].per_second, http["knox"].per_second))
    if "refresh" in figures:
        hit = figures["refresh"]["jwt_sessions refresh, Redis hit"][0]
        simple = figures["refresh"]["simplejwt refresh (rotation + blacklist)"][0]
        check("refresh (Redis hit) >= 1.5x simplejwt rotating refresh + blacklist",
              ratio(hit / simple), hit / simple >= 1.5)
    if "trust" in figures:
        forged = figures["trust"]["forged"]
        (real, *_, real_bcrypt), (unknown, *_, unknown_bcrypt) = forged.values()
        check("forged refresh: real vs unknown session within 20 %, no bcrypt",
              f"{ratio(real / unknown)}, {real_bcrypt + unknown_bcrypt} bcrypt",
              0.8 <= real / unknown <= 1.25 and real_bcrypt + unknown_bcrypt == 0)
        revoked = figures["trust"]["revoked"]
        check("revoked access token: 0 SQL, 1 Redis round trip",
              f"{revoked.sql:g} SQL, {revoked.redis:g} RT",
              revoked.sql == 0 and revoked.redis == 1)
        logins = {label: statistics.median(samples)
                  for label, (_r, samples) in figures["trust"]["logins"].items()}
        ours, simple = logins.values()
        check("login with Django's default hasher <= 1.15x simplejwt's",
              ratio(ours / simple), ours / simple <= 1.15)
    if "refresh" in figures:
        hit_spent = figures["refresh"]["jwt_sessions refresh, Redis hit"][2]
        check("refresh (Redis hit): at most 2 SQL queries", f"{hit_spent.sql:g} SQL",
              hit_spent.sql <= 2)
    if ("logout-all", 1000) in figures.get("logout", {}):
        took, trips = figures["logout"]["logout-all", 1000]
        check("logout-all of 1000 sessions: <= 3 Redis round trips, < 50 ms",
              f"{trips:g} RT (auth included), {took:.1f} ms", trips <= 3 and took < 50)
    if "memory" in figures:
        check("<= 400 bytes of Redis per active session (index included, 1 session/user)",
              f"{figures['memory']:.0f} bytes", figures["memory"] <= 400)
    if "cache" in figures:
        results, costs = figures["cache"]["results"], figures["cache"]["costs"]
        cached = results["jwt_sessions_cached"].p50
        stateless, floor = results["simplejwt_stateless"].p50, results["floor"].p50
        check("LOCAL_CACHE hit <= 1.15x the stateless simplejwt check (p50)",
              ratio(cached / stateless), cached / stateless <= 1.15)
        check("LOCAL_CACHE hit <= 0.6x the floor (p50)", ratio(cached / floor),
              cached / floor <= 0.6)
        spent = costs["jwt_sessions_cached"]
        check("0 SQL and 0 Redis round trips on a cached hit",
              f"{spent.sql:g} SQL, {spent.redis:g} RT", spent.sql == 0 and spent.redis == 0)
    if figures.get("events"):
        events = figures["events"]
        p50, p99, _ = events["delivery"]
        check("revocation event delivered to another process (p50 / p99)",
              f"{p50:.2f} / {p99:.2f} ms", p99 <= 10)
        for case in ("visible, I/O-bound B", "visible, CPU-bound B"):
            p50, p99, _ = events[case]
            check(f"LOCAL_CACHE: revoke in A -> refused in B, p99 <= 10 ms ({case[9:]})",
                  f"{p50:.1f} / {p99:.1f} ms (p50 / p99)", p99 <= 10)
        worst = events["visible, silent partition"][2]
        check("LOCAL_CACHE: silent partition, worst case <= max_age",
              f"{worst / 1000:.2f} s (max_age {events['max_age'] / 1000:.0f} s)",
              worst <= events["max_age"])
    if figures.get("socket_close"):
        close = figures["socket_close"]
        check("revoked session's WebSocket closed in another process within 1 s (p99)",
              f"p50 {close['p50']:.1f} ms, p99 {close['p99']:.1f} ms, "
              f"{close['closed']}/{close['count']} with 4401",
              close["p99"] < 1000 and close["closed"] == close["count"])
    if rows:
        summary = Report()
        summary.add("## Targets (issues 7, 13 and 14), from this run", "")
        summary.table(["target", "measured", "status"], rows)
        report.lines[at:at] = summary.lines


# ---------------------------------------------------------------------------- main
SECTIONS = ("requests", "cache", "http", "refresh", "trust", "logout", "memory", "dead",
            "scale", "doors", "events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (~2 min)")
    parser.add_argument("--postgres", action="store_true",
                        help="PostgreSQL at BENCH_DATABASE_URL (default: a local database)")
    parser.add_argument("--no-http", action="store_true", help="skip gunicorn + wrk")
    parser.add_argument("--output", help="also write the Markdown report to this file")
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    cfg = Config(quick=args.quick, http=not args.no_http, postgres=args.postgres)
    prepare_database(cfg)
    import benchmarks.harness  # noqa: F401  (counts Redis round trips from here on)

    redis_conn().flushdb()
    report = Report()
    report.add("# jwt_sessions benchmarks", "", *machine(cfg), "")
    header_end = len(report.lines)
    user = make_user("bench")
    creds = credentials(user)
    figures: dict = {}
    floor_us = simple_us = None
    if "requests" in only:
        figures["requests"] = bench_requests(cfg, report, creds)
        results = figures["requests"]["results"]
        floor_us, simple_us = results["floor"].p50, results["simplejwt"].p50
    if "cache" in only:
        figures["cache"] = bench_local_cache(cfg, report, creds)
    if "http" in only:
        figures["http"] = bench_http(cfg, report, creds)
    if "refresh" in only:
        figures["refresh"] = bench_login_refresh(cfg, report, user)
        bench_refresh_after_flush(cfg, report, user)
    if "trust" in only:
        figures["trust"] = bench_trust(cfg, report, user)
    if "logout" in only:
        figures["logout"] = bench_logout(cfg, report)
    if "memory" in only:
        figures["memory"] = bench_memory(cfg, report)
    if "dead" in only:
        bench_redis_dead(cfg, report, user, floor_us, simple_us)  # p50s of table 1
        bench_fallback_gate(cfg, report, user)
    if "scale" in only:
        bench_local_cache_scale(cfg, report)
    if "doors" in only:
        from benchmarks import doors

        figures["ninja"] = doors.bench_ninja(cfg, report, creds["jwt_sessions"][1][7:])
        figures["socket_close"] = doors.bench_socket_close(cfg, report, user)
    if "events" in only:
        figures["events"] = bench_events(cfg, report)
    targets(report, figures, at=header_end)
    report.publish(args.output)


if __name__ == "__main__":
    main()
