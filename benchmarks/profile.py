"""Where an authenticated request's time goes: per-scheme `authenticate()` alone, and a
pyinstrument profile of jwt_sessions' whoami requests.

    python benchmarks/profile.py [--requests N] [--scheme jwt_sessions]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import run  # noqa: E402  (sets DJANGO_SETTINGS_MODULE and sys.path)


def authenticate_only(creds: dict, n: int) -> None:
    """Microseconds per `authenticate()` call, without Django or DRF around it."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    from benchmarks.site.views import VIEWS

    factory = RequestFactory()
    for scheme in ("floor", "jwt_sessions", "simplejwt", "knox"):
        auth = VIEWS[scheme].authentication_classes[0]()
        request = Request(factory.get("/", **run.environ(creds[scheme])))
        best = []
        for _ in range(5):
            start = time.perf_counter_ns()
            for _ in range(n):
                user, _claims = auth.authenticate(request)
                user.pk  # noqa: B018  (what the view reads)
            best.append((time.perf_counter_ns() - start) / n / 1000)
        print(f"{scheme:14s} authenticate(): {statistics.median(best):7.1f} us "
              f"(min {min(best):.1f})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--scheme", default="jwt_sessions")
    args = parser.parse_args()
    run.prepare_database(run.Config(quick=True, http=False, postgres=False))
    run.redis_conn().flushdb()
    creds = run.credentials(run.make_user("profile"))
    authenticate_only(creds, 2000)
    from pyinstrument import Profiler

    call = run.whoami_call(args.scheme, creds[args.scheme])
    for _ in range(100):
        call()
    profiler = Profiler(interval=0.0001)
    with profiler:
        for _ in range(args.requests):
            call()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
