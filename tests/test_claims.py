"""auth_time and amr claims, and CLAIMS_HOOK: a project's own claims in every access token."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from jwt_sessions import api as jwt_api
from jwt_sessions.models import Session
from tests.conftest import bearer, url
from tests.jwt_forge import b64url_decode, hmac_sign, parts, segment

pytestmark = pytest.mark.django_db

HOOK = "tests.test_claims.name_and_roles"
HOOK_CALLS: list = []


def name_and_roles(user, session_id):
    HOOK_CALLS.append(session_id)
    return {"name": user.get_username().upper(), "roles": ["editor"]}


def overrides_sub(user, session_id):
    return {"sub": "1", "name": "x"}


def not_a_dict(user, session_id):
    return ["name"]


def reauthenticate(api, access: str, password: str = "Pa55word-for-tests", **extra):
    return api.post(url("reauthenticate"), {"password": password}, **bearer(access), **extra)


@pytest.fixture(autouse=True)
def _forget_hook_calls():
    HOOK_CALLS.clear()


def test_password_login_claims_auth_time_now_and_amr_pwd(api, user, clock):
    body = api.login_ok(user.username)
    claims = parts(body["access"])[1]
    session = Session.objects.get(pk=body["session_id"])
    assert claims["amr"] == ["pwd"] and session.amr == ["pwd"]
    assert claims["auth_time"] == claims["iat"] == int(session.auth_time.timestamp())


def test_issue_tokens_amr_is_the_callers_and_empty_by_default(user):
    assert parts(jwt_api.issue_tokens(user)["access"])[1]["amr"] == []
    body = jwt_api.issue_tokens(user, amr=["pwd", "otp"])
    assert parts(body["access"])[1]["amr"] == ["pwd", "otp"]
    assert Session.objects.get(pk=body["session_id"]).amr == ["pwd", "otp"]
    with pytest.raises(TypeError):
        jwt_api.issue_tokens(user, amr="otp")


@pytest.mark.parametrize("path", ["redis", "database"])
def test_auth_time_and_amr_survive_refreshes(api, user, clock, redis_conn, path):
    body = api.login_ok(user.username)
    login_time = parts(body["access"])[1]["auth_time"]
    for _ in range(3):
        clock.tick(timedelta(minutes=10))
        if path == "database":
            redis_conn.flushdb()
        body = api.refresh_ok(body["refresh"])
        claims = parts(body["access"])[1]
        assert claims["auth_time"] == login_time < claims["iat"]
        assert claims["amr"] == ["pwd"]
    assert api.client.get("/api/claims/", **bearer(body["access"])).json()["auth_time"] == (
        login_time)


def test_auth_time_moves_on_reauthentication_only(api, user, clock):
    body = api.login_ok(user.username)
    login_time = parts(body["access"])[1]["auth_time"]
    clock.tick(timedelta(minutes=10))
    body = api.refresh_ok(body["refresh"])
    assert parts(body["access"])[1]["auth_time"] == login_time
    clock.tick(timedelta(minutes=10))
    resp = reauthenticate(api, body["access"])
    assert resp.status_code == 200, resp.content
    fresh = parts(resp.json()["access"])[1]
    assert fresh["auth_time"] == fresh["iat"] == login_time + 20 * 60
    clock.tick(timedelta(minutes=5))
    again = parts(api.refresh_ok(resp.json()["refresh"])["access"])[1]
    assert again["auth_time"] == fresh["auth_time"]


def test_custom_claims_reach_the_view_through_request_auth(api, user, jwt_settings):
    jwt_settings(CLAIMS_HOOK=HOOK)
    body = api.login_ok(user.username)
    expected = {"name": user.username.upper(), "roles": ["editor"]}
    seen = api.client.get("/api/claims/", **bearer(body["access"])).json()
    assert seen["extra"] == expected and seen["amr"] == ["pwd"]
    refreshed = api.refresh_ok(body["refresh"])
    seen = api.client.get("/api/claims/", **bearer(refreshed["access"])).json()
    assert seen["extra"] == expected
    assert [str(sid) for sid in HOOK_CALLS] == [body["session_id"]] * 2


def test_a_callable_hook_works_too(api, user, jwt_settings):
    jwt_settings(CLAIMS_HOOK=lambda user, session_id: {"tier": "gold"})
    body = api.login_ok(user.username)
    assert parts(body["access"])[1]["tier"] == "gold"


def test_a_hook_that_reads_the_user_costs_refresh_no_query(api, user, jwt_settings, queries):
    """A refresh reads the user row anyway (the credentials binding): the hook gets it."""
    def refresh_queries(hook):
        jwt_settings(CLAIMS_HOOK=hook)
        body = api.login_ok(user.username)
        with queries() as captured:
            refreshed = api.refresh_ok(body["refresh"])
        return len(captured.captured_queries), parts(refreshed["access"])[1]

    baseline, _ = refresh_queries(None)
    count, claims = refresh_queries(HOOK)
    assert count == baseline and claims["name"] == user.username.upper()


@pytest.mark.parametrize("hook", ["tests.test_claims.overrides_sub",
                                  "tests.test_claims.not_a_dict"])
def test_a_hook_that_sets_reserved_claims_is_refused(user, jwt_settings, hook):
    jwt_settings(CLAIMS_HOOK=hook)
    with pytest.raises(ImproperlyConfigured):
        jwt_api.issue_tokens(user)


def test_a_forged_extra_claim_is_still_verified_by_signature(api, user, jwt_settings):
    """Custom claims are signed like the rest: editing one breaks the token."""
    jwt_settings(CLAIMS_HOOK=HOOK)
    header, payload, signature = api.login_ok(user.username)["access"].split(".")
    claims = json.loads(b64url_decode(payload))
    claims["roles"] = ["admin"]
    forged = f"{header}.{segment(claims)}.{signature}"
    assert api.whoami(forged).status_code == 401


@pytest.mark.parametrize("value", ["tests.test_claims.missing", 42, "tests.test_claims.HOOK"])
def test_system_check_refuses_an_unusable_hook(settings, value):
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "CLAIMS_HOOK": value}
    with pytest.raises(SystemCheckError, match="E022"):
        call_command("check")


@pytest.mark.parametrize("change", [{"auth_time": "yesterday"}, {"auth_time": True},
                                    {"amr": "pwd"}, {"amr": [1]}])
def test_signed_tokens_with_malformed_auth_claims_are_refused(api, user, settings, change):
    header, claims = parts(api.login_ok(user.username)["access"])
    assert api.whoami(hmac_sign(header, claims, settings.SECRET_KEY)).status_code == 200
    forged = hmac_sign(header, {**claims, **change}, settings.SECRET_KEY)
    assert api.whoami(forged).status_code == 401


def test_a_token_without_auth_time_passes_authentication_but_not_step_up(api, user, settings):
    """Tokens signed before the claim existed stay valid until they expire."""
    header, claims = parts(api.login_ok(user.username)["access"])
    del claims["auth_time"], claims["amr"]
    legacy = hmac_sign(header, claims, settings.SECRET_KEY)
    assert api.whoami(legacy).status_code == 200
    resp = api.post("/api/sensitive/", {}, **bearer(legacy))
    assert resp.status_code == 401 and resp.json()["code"] == "reauthentication_required"
