"""django-ninja: JWTSessionAuth on sync and async operations, install()'s error bodies,
and the OpenAPI security scheme ninja shows."""
from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from jwt_sessions.redis.store import astore
from tests.conftest import assert_error
from tests.redis_servers import forget_redis_pools, point_cache_at
from tests.test_async import async_round_trips  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.ninja_urls")]


def get(path: str, token: str | None = None, header: str | None = None):
    """A GET through Django's WSGI handler (async operations run in their own loop)."""
    extra = {}
    if token is not None or header is not None:
        extra["HTTP_AUTHORIZATION"] = header if header is not None else f"Bearer {token}"
    return Client().get(path, **extra)


def aget(*paths: str, token: str):
    """GETs through Django's ASGI handler, in one event loop (as under an ASGI server)."""
    async def run():
        client = AsyncClient()
        try:
            return [await client.get(path, headers={"Authorization": f"Bearer {token}"})
                    for path in paths]
        finally:
            await astore.aclose()

    return async_to_sync(run)()


@pytest.mark.parametrize("path", ["/ninja/sync/whoami", "/ninja/async/whoami"])
def test_operation_sees_claims_and_lazy_user_without_sql(path, user, tokens, queries):
    get(path, tokens["access"])  # warm-up: Django's own first-request work
    with queries() as captured:
        response = get(path, tokens["access"])
    assert response.status_code == 200, response.content
    assert response.json() == {"id": user.pk, "sid": tokens["session_id"]}
    assert len(captured) == 0, [q["sql"] for q in captured]


def test_async_operation_under_asgi_is_one_round_trip_and_no_sql(
        user, tokens, queries, async_round_trips, monkeypatch):  # noqa: F811
    from jwt_sessions import counters

    monkeypatch.setattr(counters, "_last_flush", time.monotonic())
    with queries() as captured:
        [response] = aget("/ninja/async/whoami", token=tokens["access"])
    assert response.status_code == 200, response.content
    assert response.json()["id"] == user.pk
    assert len(captured) == 0, [q["sql"] for q in captured]
    assert async_round_trips == ["MGET"]


@pytest.mark.parametrize("path", ["/ninja/sync/me", "/ninja/async/me"])
def test_reading_the_user_loads_it(path, user, tokens):
    response = (get(path, tokens["access"]) if "sync" in path.split("/")[2]
                else aget(path, token=tokens["access"])[0])
    assert response.json() == {"id": user.pk, "username": user.username}


@pytest.mark.parametrize("path", ["/ninja/sync/whoami", "/ninja/async/whoami"])
def test_no_credentials_is_401_not_authenticated(path):
    assert_error(get(path), 401, "not_authenticated")
    assert_error(get(path, header="Basic YWxpY2U6YWxpY2U="), 401, "not_authenticated")


@pytest.mark.parametrize("path", ["/ninja/sync/whoami", "/ninja/async/whoami"])
@pytest.mark.parametrize("header", [
    "Bearer garbage", "Bearer a.b.c", "Bearer " + "x" * 100_000, "Bearer one two",
    "Bearer",
])
def test_bad_tokens_are_401_token_invalid(path, header):
    assert_error(get(path, header=header), 401, "token_invalid")


@pytest.mark.parametrize("path", ["/ninja/sync/whoami", "/ninja/async/whoami"])
def test_revoked_session_is_401_without_sql(path, api, tokens, queries):
    assert api.logout(tokens["access"]).status_code == 204
    get(path, tokens["access"])
    with queries() as captured:
        assert_error(get(path, tokens["access"]), 401, "session_revoked")
    assert len(captured) == 0


def test_revoked_is_refused_under_asgi_too(api, tokens):
    assert api.logout(tokens["access"]).status_code == 204
    [response] = aget("/ninja/async/whoami", token=tokens["access"])
    assert_error(response, 401, "session_revoked")


def test_expired_token_is_401_token_expired(tokens, clock):
    clock.tick(3600)
    assert_error(get("/ninja/async/whoami", tokens["access"]), 401, "token_expired")
    assert_error(get("/ninja/sync/whoami", tokens["access"]), 401, "token_expired")


@pytest.mark.parametrize("path", ["/ninja/sync/whoami", "/ninja/async/whoami"])
def test_dead_redis_under_policy_deny_is_503(path, user, settings, jwt_settings):
    from jwt_sessions.services import issue_tokens

    pair = issue_tokens(user)
    point_cache_at(settings, "redis://127.0.0.1:1/0")
    jwt_settings(REDIS_FAILURE_POLICY="deny")
    try:
        assert_error(get(path, pair.access), 503, "service_unavailable")
    finally:
        forget_redis_pools()


@pytest.mark.parametrize("path", ["/ninja/sync/whoami", "/ninja/async/whoami"])
def test_dead_redis_under_policy_database_answers(path, user, settings):
    from jwt_sessions.services import issue_tokens

    pair = issue_tokens(user)
    point_cache_at(settings, "redis://127.0.0.1:1/0")
    try:
        assert get(path, pair.access).status_code == 200
    finally:
        forget_redis_pools()


def test_open_operation_needs_nothing():
    assert get("/ninja/open").json() == {"open": True}


def test_openapi_shows_the_bearer_scheme():
    from tests.ninja_urls import api

    schema = api.get_openapi_schema()
    assert schema["components"]["securitySchemes"]["JWTSessionAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    operation = schema["paths"]["/ninja/async/whoami"]["get"]
    assert operation["security"] == [{"JWTSessionAuth": []}]
    assert "security" not in schema["paths"]["/ninja/open"]["get"]
