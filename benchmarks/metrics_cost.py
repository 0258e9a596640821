"""What the OpenTelemetry metrics cost the access check.

    python benchmarks/metrics_cost.py [--quick] [--output FILE]

The same check (`access.authenticate_access`, a live token, one Redis round trip) in
three kinds of child process, interleaved round by round so that drift hits all alike:

- `absent`: OpenTelemetry cannot be imported (as if `jwt_sessions[otel]` were not
  installed): no wrapper, no call;
- `api`: the API installed, no meter provider set (the API's no-op meter);
- `sdk`: the SDK's MeterProvider set globally, with a metric reader attached (what a
  deployment exporting metrics pays), one check in 16 timed into the histogram (the
  default);
- `sdk-every`: the same, every check timed (`metrics.configure(sample_every=1)`).

Redis: `BENCH_REDIS_URL` (default redis://127.0.0.1:6379/7; only keys with a TTL are
written, nothing is flushed). Database: a SQLite file per child in a temporary folder.
Markdown goes to stdout (and FILE), progress to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("absent", "api", "sdk", "sdk-every")
BATCH = 100  # checks per batch: short, so that some batches run undisturbed


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ in the child
def child(mode: str, checks: int) -> dict:
    if mode == "absent":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]  # any import fails
    reader = None
    if mode.startswith("sdk"):
        from opentelemetry import metrics as otel
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        reader = InMemoryMetricReader()
        otel.set_meter_provider(MeterProvider(metric_readers=[reader]))
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from jwt_sessions import access, api, metrics

    if mode == "sdk-every":
        metrics.configure(sample_every=1)
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(f"bench-{os.getpid()}", password="x")
    token = api.issue_tokens(user)["access"]
    check = access.authenticate_access
    for _ in range(500):  # warm up: connections, caches
        check(token)
    # With OTel, the unwrapped check is what runs without it (the decorator returns the
    # check itself then; every other hook on this path is the same dict lookup): the two
    # alternate batch by batch in one process, the fairest comparison on a busy machine.
    bare = getattr(check, "__wrapped__", check)
    per_check_us, bare_us = _fastest_batches([check, bare], token, checks)
    recorded = None
    if reader is not None:
        data = reader.get_metrics_data()
        recorded = sum(point.count for resource in data.resource_metrics
                       for scope in resource.scope_metrics for metric in scope.metrics
                       if metric.name == "jwt_sessions.access_check.duration"
                       for point in metric.data.data_points)
    wrapper_us = _wrapper_cost() if hasattr(check, "__wrapped__") else 0.0
    return {"mode": mode, "us": per_check_us, "bare_us": bare_us, "wrapper_us": wrapper_us,
            "recorded": recorded,
            "wrapped": hasattr(check, "__wrapped__")}


def _wrapper_cost(calls: int = 200_000) -> float:
    """Microseconds the timing wrapper adds to one call, on average over its sampling
    (a sequence number; for the timed calls two clock reads and a histogram record),
    measured on a function that does nothing: the check's own noise left out."""
    from jwt_sessions import metrics

    def nothing(token: str) -> None:
        return None

    timed = metrics.timed_access_check(nothing)
    bare, wrapped = _fastest_batches([nothing, timed], "", calls)
    return wrapped - bare


def _fastest_batches(checks: list, token: str, count: int) -> list[float]:
    """Per-check microseconds of each check: alternating batches, the fastest batch
    of each (the least disturbed: the machine is shared)."""
    clock = time.perf_counter_ns
    best = [float("inf")] * len(checks)
    for _ in range(max(count // BATCH, 1)):
        for index, check in enumerate(checks):
            started = clock()
            for _ in range(BATCH):
                check(token)
            best[index] = min(best[index], (clock() - started) / BATCH / 1000)
    return best


# ------------------------------------------------------------------ the parent
def run_child(mode: str, checks: int, folder: str, redis_url: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(REDIS_URL=redis_url, TMPDIR=folder, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--checks", str(checks)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict[str, list[dict]], checks: int, rounds: int) -> str:
    medians = {mode: statistics.median(r["us"] for r in runs) for mode, runs in results.items()}
    base = medians["absent"]
    lines = [
        "# Metrics cost of the access check",
        "",
        f"`benchmarks/metrics_cost.py`: {rounds} interleaved rounds per mode, one child "
        f"process each, {checks:,} checks in batches of {BATCH}; a round's figure is its "
        "fastest batch (the least disturbed: the machine is shared), the table shows the "
        "median round.",
        "A live token, one Redis round trip per check (no LOCAL_CACHE), Redis on loopback.",
        "",
        "| OpenTelemetry | us / check (median) | rounds (us) | ratio to absent | "
        "histogram points |",
        "|---|---:|---|---:|---:|",
    ]
    labels = {"absent": "not installed", "api": "API, no provider (no-op)",
              "sdk": "SDK + reader attached (1 check in 16 timed)",
              "sdk-every": "SDK + reader attached, every check timed"}
    for mode in MODES:
        runs = results[mode]
        rounds_text = ", ".join(f"{r['us']:.1f}" for r in runs)
        recorded = runs[-1]["recorded"]
        lines.append(f"| {labels[mode]} | {medians[mode]:.1f} | {rounds_text} | "
                     f"{medians[mode] / base:.3f}x | "
                     f"{'-' if recorded is None else f'{recorded:,}'} |")
    lines += ["", "In each SDK process, two more figures, free of the between-process noise:",
              "", "| OpenTelemetry | recorded check / same check unwrapped, alternating "
              "batches (median of rounds) | wrapper alone, on a function that does nothing "
              "(us / call) | check + wrapper / check |", "|---|---:|---:|---:|"]
    for mode in ("sdk", "sdk-every"):
        runs = results[mode]
        same_process = statistics.median(r["us"] / r["bare_us"] for r in runs)
        wrapper = statistics.median(r["wrapper_us"] for r in runs)
        bare = statistics.median(r["bare_us"] for r in runs)
        lines.append(f"| {labels[mode]} | {same_process:.3f}x | {wrapper:.2f} | "
                     f"{(bare + wrapper) / bare:.3f}x |")
    lines += ["", "Target: SDK + reader <= 1.05x of not installed.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer checks and rounds")
    parser.add_argument("--output", help="also write the Markdown report here")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--checks", type=int, default=20_000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.checks)))
        return
    checks, rounds = (5_000, 3) if args.quick else (20_000, 7)
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as folder:
        for number in range(rounds):
            for mode in MODES:
                log(f"round {number + 1}/{rounds}: {mode}")
                results[mode].append(run_child(mode, checks, folder, redis_url))
    assert not any(r["wrapped"] for r in results["absent"]), "absent must not wrap"
    text = report(results, checks, rounds)
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
