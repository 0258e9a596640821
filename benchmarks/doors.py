"""The other doors, over real servers: an async django-ninja operation under uvicorn, and
how soon a revoked session's WebSocket closes in the server process."""
from __future__ import annotations

import json
import statistics
import time

from benchmarks import loadtest


def bench_ninja(cfg, report, access: str) -> dict | None:
    """wrk against the same async ninja operation, guarded by JWTSessionAuth and by
    ninja's HttpBearer with a stateless PyJWT decode (no revocation check)."""
    from benchmarks.run import fmt, log, ratio

    if not loadtest.available(loadtest.UVICORN):
        report.add("## 7. django-ninja under uvicorn", "", "Skipped (wrk or uvicorn missing).",
                   "")
        return None
    seconds, connections = cfg.n(5, 2), 8
    labels = {"stateless": "ninja HttpBearer, stateless PyJWT decode (the floor)",
              "jwt_sessions": "jwt_sessions JWTSessionAuth (aauthenticate: 1 Redis MGET)"}
    runs: dict[str, list] = {scheme: [] for scheme in labels}
    repeats = cfg.n(3, 1)
    with loadtest.uvicorn(workers=2) as base:
        for scheme in labels:  # warm-up
            loadtest.wrk(f"{base}/ninja/{scheme}/whoami", f"Authorization: Bearer {access}",
                         1, connections)
        for rep in range(repeats):
            for scheme in labels:  # interleaved, so a noisy neighbour hits both alike
                log(f"wrk ninja {scheme} {seconds}s, repeat {rep + 1}/{repeats}")
                runs[scheme].append(loadtest.wrk(
                    f"{base}/ninja/{scheme}/whoami", f"Authorization: Bearer {access}",
                    seconds, connections))
    results = {scheme: loadtest.WrkResult(
        statistics.median(r.per_second for r in rs), statistics.median(r.p50_ms for r in rs),
        statistics.median(r.p99_ms for r in rs), sum(r.errors for r in rs))
        for scheme, rs in runs.items()}
    floor = results["stateless"].per_second
    report.add("## 7. Async django-ninja operation under uvicorn",
               "",
               f"uvicorn (2 workers, asyncio loop, access log off) on 127.0.0.1, wrk -t1 "
               f"-c{connections} -d{seconds}s on the same 2 cores, {repeats} interleaved "
               "repeats, the median of each figure. The same `async def` "
               "operation returning the user id; the floor checks the signature only, so "
               "it would accept a revoked session's token.",
               "")
    report.table(["auth", "req/s", "p50 ms", "p99 ms", "non-2xx", "time / floor"],
                 [[labels[s], fmt(r.per_second), fmt(r.p50_ms, 2), fmt(r.p99_ms, 2),
                   str(r.errors), ratio(floor / r.per_second)] for s, r in results.items()])
    return results


def bench_socket_close(cfg, report, user) -> dict | None:
    """Revoke a session in this process; time until its WebSocket, open in a uvicorn
    process, is seen closed (code 4401) by the client."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from benchmarks.run import fmt, log, open_sessions
    from jwt_sessions.services import revoke_session

    if not loadtest.UVICORN.exists():
        report.add("## 8. WebSocket close on revocation", "", "Skipped (uvicorn missing).", "")
        return None
    count = cfg.n(100, 30)
    pairs = open_sessions(user, count)
    latencies, codes = [], []
    with loadtest.uvicorn(workers=1) as base:
        ws_url = base.replace("http://", "ws://") + "/ws/session/"
        log(f"WebSocket close latency over {count} revocations")
        for number, pair in enumerate(pairs):
            with connect(ws_url, subprotocols=["jwt_sessions",
                                               f"jwt_sessions.bearer.{pair.access}"]) as ws:
                assert json.loads(ws.recv(timeout=5))["type"] == "session"
                if number == 0:
                    time.sleep(0.5)  # the server's receiver proves itself once, at start
                assert revoke_session(pair.session_id)
                returned = time.perf_counter()
                try:
                    ws.recv(timeout=5)
                    raise AssertionError("the socket sent a message instead of closing")
                except ConnectionClosed as closed:
                    latencies.append((time.perf_counter() - returned) * 1000)
                    codes.append(closed.rcvd.code if closed.rcvd else None)
                except TimeoutError:
                    latencies.append(float("inf"))
                    codes.append(None)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    report.add("## 8. WebSocket closed on revocation, across processes",
               "",
               f"{count} sessions, one at a time: a socket opened on a uvicorn process "
               "(1 worker), `revoke_session()` called in the benchmark process; the time "
               "from its return until the client sees the close frame.",
               "")
    report.table(["revocations", "closed with 4401", "p50 ms", "p99 ms", "max ms",
                  "within 1 s"],
                 [[str(count), str(codes.count(4401)), fmt(p50, 1), fmt(p99, 1),
                   fmt(ordered[-1], 1), str(sum(1 for v in latencies if v < 1000))]])
    return {"p50": p50, "p99": p99, "closed": codes.count(4401), "count": count}
