"""drf-spectacular documents every endpoint, with the Bearer scheme and error codes."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("drf_spectacular")

from drf_spectacular.views import SpectacularAPIView  # noqa: E402

import jwt_sessions.openapi  # noqa: E402,F401  (registered by the app when installed)

ENDPOINTS = {
    "/auth/login/": {"post": {200, 400, 401, 403, 429, 503}},
    "/auth/refresh/": {"post": {200, 400, 401, 403, 429, 503}},
    "/auth/logout/": {"post": {204, 401, 503}},
    "/auth/logout-all/": {"post": {204, 400, 401, 503}},
    "/auth/sessions/": {"get": {200, 401, 503}},
    "/auth/sessions/{session_id}/": {"delete": {204, 401, 404, 503}},
    "/auth/.well-known/jwks.json": {"get": {200}},
    "/auth/introspect/": {"post": {200, 400, 401, 403, 429, 503}},
    "/auth/revoke/": {"post": {200, 400, 429, 503}},
    "/auth/reauthenticate/": {"post": {200, 400, 401, 429, 503}},
}


@pytest.fixture
def schema(rf, settings):
    """The schema SpectacularAPIView serves for the test site (auth/ and api/)."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
    view = SpectacularAPIView.as_view(urlconf="tests.urls")
    resp = view(rf.get("/schema/", {"format": "json"}))
    assert resp.status_code == 200
    return json.loads(resp.render().content)


def test_every_endpoint_is_documented_with_its_responses(schema):
    for route, methods in ENDPOINTS.items():
        assert route in schema["paths"], route
        for method, statuses in methods.items():
            operation = schema["paths"][route][method]
            assert {int(s) for s in operation["responses"]} == statuses, (route, method)


def test_bearer_scheme_is_jwt(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["jwtSessionsBearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": schemes["jwtSessionsBearer"]["description"]}
    logout = schema["paths"]["/auth/logout/"]["post"]
    assert {"jwtSessionsBearer": []} in logout["security"]


def test_bodies_and_error_codes(schema):
    components = schema["components"]["schemas"]
    login = schema["paths"]["/auth/login/"]["post"]
    body = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(components[body.rsplit("/", 1)[1]]["properties"]) == {"username", "password"}
    pair = login["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert set(components[pair.rsplit("/", 1)[1]]["properties"]) == {
        "access", "refresh", "access_expires_at", "refresh_expires_at", "session_id",
        "token_type"}
    refresh_401 = schema["paths"]["/auth/refresh/"]["post"]["responses"]["401"]
    assert "`refresh_token_reused`" in refresh_401["description"]
    sessions = schema["paths"]["/auth/sessions/"]["get"]["responses"]["200"]
    assert sessions["content"]["application/json"]["schema"]["type"] == "array"


def test_token_endpoints_take_forms_and_json(schema):
    for route in ("/auth/introspect/", "/auth/revoke/"):
        content = schema["paths"][route]["post"]["requestBody"]["content"]
        assert set(content) == {"application/x-www-form-urlencoded", "application/json"}
    components = schema["components"]["schemas"]
    answer = schema["paths"]["/auth/introspect/"]["post"]["responses"]["200"]
    ref = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert components[ref]["required"] == ["active"]
    forbidden = schema["paths"]["/auth/introspect/"]["post"]["responses"]["403"]
    assert "`permission_denied`" in forbidden["description"]
    reauth = schema["paths"]["/auth/reauthenticate/"]["post"]
    assert {"jwtSessionsBearer": []} in reauth["security"]


def test_the_device_list_documents_the_session_cap_headers(schema):
    headers = schema["paths"]["/auth/sessions/"]["get"]["responses"]["200"]["headers"]
    assert headers["Session-Limit"]["schema"]["type"] == "integer"
    assert headers["Session-Limit-Policy"]["schema"]["enum"] == ["evict", "refuse"]
