"""Introspection at gateway speed: a gateway's repeat call costs no SQL for its own
identity and permission, and refuses exactly what it refused before."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from jwt_sessions import api as jwt_api
from tests.conftest import bearer, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway(api, make_user):
    account = make_user()
    account.user_permissions.add(Permission.objects.get(codename="introspect_session"))
    return api.login_ok(account.username)


def introspect(gateway_access: str, token: str):
    return Client().post(url("introspect"), urlencode({"token": token}),
                         content_type="application/x-www-form-urlencoded",
                         **bearer(gateway_access))


def test_a_repeat_introspection_costs_no_sql(gateway, tokens, queries):
    assert introspect(gateway["access"], tokens["access"]).json()["active"] is True
    with queries() as captured:
        body = introspect(gateway["access"], tokens["access"]).json()
    assert body["active"] is True and body["sid"] == tokens["session_id"]
    assert len(captured) == 0, [q["sql"] for q in captured]


def test_revocations_count_at_once_on_both_sides(gateway, tokens):
    introspect(gateway["access"], tokens["access"])
    jwt_api.revoke_session(tokens["session_id"])
    assert introspect(gateway["access"], tokens["access"]).json() == {"active": False}
    jwt_api.revoke_session(gateway["session_id"])
    assert introspect(gateway["access"], tokens["access"]).status_code == 401


def test_an_account_without_the_permission_is_refused_every_time(api, user, tokens):
    access = api.login_ok(user.username)["access"]
    assert introspect(access, tokens["access"]).status_code == 403
    assert introspect(access, tokens["access"]).status_code == 403


def test_metadata_lists_the_endpoints():
    body = Client().get(url("authorization_server_metadata")).json()
    for field, name in [("introspection_endpoint", "introspect"), ("revocation_endpoint", "revoke"),
                        ("jwks_uri", "jwks"),
                        ("global_token_revocation_endpoint", "global_token_revocation")]:
        assert body[field] == f"http://testserver{url(name)}"
    assert body["issuer"] and "ssf_configuration_uri" not in body


def test_metadata_names_the_ssf_configuration_when_on(settings):
    from tests.ssf_helpers import shared_signals

    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "SHARED_SIGNALS": shared_signals()}
    body = Client().get(url("authorization_server_metadata")).json()
    assert body["ssf_configuration_uri"] == f"http://testserver{url('ssf_configuration')}"


@pytest.fixture
def unthrottled(settings):
    """The throttle's own round trip apart (a gateway's deployment may turn it off)."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_introspect": None}}


@pytest.mark.usefixtures("unthrottled")
def test_the_gateway_and_the_token_cost_one_redis_round_trip(gateway, tokens, round_trips):
    introspect(gateway["access"], tokens["access"])
    round_trips[0] = 0
    assert introspect(gateway["access"], tokens["access"]).json()["active"] is True
    assert round_trips[0] == 1


@pytest.mark.usefixtures("unthrottled")
def test_a_token_asked_about_that_is_revoked_is_inactive_in_that_round_trip(gateway, tokens,
                                                                            round_trips):
    jwt_api.revoke_session(tokens["session_id"])
    round_trips[0] = 0
    assert introspect(gateway["access"], tokens["access"]).json() == {"active": False}
    assert round_trips[0] == 1


def test_garbage_in_either_place_takes_the_ordinary_path(gateway, tokens):
    assert introspect(gateway["access"], "not-a-token").json() == {"active": False}
    resp = Client().post(url("introspect"), urlencode({"token": tokens["access"]}),
                         content_type="application/x-www-form-urlencoded",
                         HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert resp.status_code == 401
