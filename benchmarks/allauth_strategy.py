"""django-allauth's headless API: jwt_sessions' TokenStrategy beside allauth's own JWT strategy.

    python benchmarks/allauth_strategy.py [--rounds N] [--output FILE]

In-process (`django.test.Client`), same users, same database, same Redis (the test
settings: SQLite + the embedded Redis stand-in, or `REDIS_URL`/`DATABASE_URL` as in the
test suite's live mode). For each strategy: a headless password login, allauth's
`tokens/refresh`, and an authenticated DRF request with the access token (jwt_sessions'
`JWTSessionAuthentication` beside allauth's `JWTTokenAuthentication`, stateless and
stateful). Prints a Markdown table: microseconds per operation (median) and SQL queries.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

PASSWORD = "bench-Pa55word"
OURS = "jwt_sessions.allauth.TokenStrategy"
ALLAUTHS = "allauth.headless.tokens.strategies.jwt.JWTTokenStrategy"
PREFIX = "/_allauth/app/v1"


def urlpatterns_():
    """This module is the URLconf of the run: allauth's API and one view per scheme."""
    from allauth.headless.contrib.rest_framework.authentication import JWTTokenAuthentication
    from django.urls import include, path
    from rest_framework.permissions import IsAuthenticated
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from jwt_sessions.authentication import JWTSessionAuthentication

    def whoami(authentication):
        class WhoAmI(APIView):
            authentication_classes = [authentication]
            permission_classes = [IsAuthenticated]

            def get(self, request):
                return Response({"id": request.user.pk})

        return WhoAmI.as_view()

    return [path("_allauth/", include("allauth.headless.urls")),
            path("whoami/jwt_sessions/", whoami(JWTSessionAuthentication)),
            path("whoami/allauth/", whoami(JWTTokenAuthentication))]


def __getattr__(name):  # the URLconf's `urlpatterns`, built once Django is set up
    if name == "urlpatterns":
        return urlpatterns_()
    raise AttributeError(name)


def timed(operation, rounds: int) -> tuple[float, float]:
    """(median microseconds, SQL queries per call) of `operation()` over `rounds` calls."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    samples, queries = [], 0
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            operation()
            samples.append((time.perf_counter() - start) * 1e6)
        queries += len(captured)
    return statistics.median(samples), queries / rounds


def measure(strategy: str, rounds: int, stateful: bool = False) -> dict[str, tuple[float, float]]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings

    results: dict[str, tuple[float, float]] = {}
    with override_settings(HEADLESS_TOKEN_STRATEGY=strategy,
                           HEADLESS_JWT_STATEFUL_VALIDATION_ENABLED=stateful,
                           HEADLESS_JWT_ALGORITHM="HS256",  # as jwt_sessions signs here
                           ROOT_URLCONF="benchmarks.allauth_strategy",
                           # The refresh throttle counts per address: out of the way here.
                           REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
                               "jwt_sessions_refresh": None}}):
        user = get_user_model().objects.create_user(
            f"bench-{strategy.rsplit('.', 1)[-1]}-{stateful}", password=PASSWORD)
        client = Client()
        body = json.dumps({"username": user.username, "password": PASSWORD})
        meta: dict = {}

        def login():
            response = client.post(PREFIX + "/auth/login", body, content_type="application/json",
                                   HTTP_USER_AGENT="bench", REMOTE_ADDR="10.9.0.1")
            assert response.status_code == 200, response.content
            meta.update(response.json()["meta"])

        results["headless login (password)"] = timed(login, max(5, rounds // 20))
        tokens = {"refresh": meta["refresh_token"], "access": meta["access_token"]}

        def refresh():
            response = client.post(PREFIX + "/tokens/refresh",
                                   json.dumps({"refresh_token": tokens["refresh"]}),
                                   content_type="application/json", REMOTE_ADDR="10.9.0.2")
            assert response.status_code == 200, response.content
            data = response.json()["data"]
            tokens["access"] = data["access_token"]
            tokens["refresh"] = data.get("refresh_token", tokens["refresh"])

        results["allauth tokens/refresh"] = timed(refresh, rounds)
        view = "/whoami/jwt_sessions/" if strategy == OURS else "/whoami/allauth/"

        def request():
            response = client.get(view, HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
            assert response.status_code == 200, response.content

        results["DRF request with the access token"] = timed(request, rounds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--output")
    args = parser.parse_args()

    import django
    from django.conf import settings
    from django.test.utils import setup_test_environment

    django.setup()
    if not settings.ALLAUTH:
        sys.exit("django-allauth is not installed: pip install -e '.[test]'")
    setup_test_environment()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0)
    columns = {
        "jwt_sessions TokenStrategy": measure(OURS, args.rounds),
        "allauth JWTTokenStrategy (stateless)": measure(ALLAUTHS, args.rounds),
        "allauth JWTTokenStrategy (stateful)": measure(ALLAUTHS, args.rounds, stateful=True),
    }
    rows = list(next(iter(columns.values())))
    lines = ["| operation | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{columns[name][row][0]:,.0f} us ({columns[name][row][1]:.1f} SQL)"
                 for name in columns]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    redis = "REDIS_URL" if os.environ.get("REDIS_URL") else "embedded Redis stand-in"
    database = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "SQLite"
    lines.append("")
    lines.append(f"Median of {args.rounds} calls (logins: {max(5, args.rounds // 20)}), "
                 f"in-process, {database} + {redis}, BCRYPT_ROUNDS="
                 f"{settings.JWT_SESSIONS.get('BCRYPT_ROUNDS', 12)}, MD5 password hasher "
                 "(the test settings).")
    report = "\n".join(lines)
    print(report)
    if args.output:
        Path(args.output).write_text(report + "\n")


if __name__ == "__main__":
    main()
