"""POST introspect/ (RFC 7662): is this token live? Asked by a gateway or another service."""
from __future__ import annotations

import base64
import json
import os
from datetime import timedelta

import pytest
from django.http import QueryDict

from jwt_sessions.crypto import new_session_secret
from jwt_sessions.models import RevokeReason, Session
from jwt_sessions.serializers import TokenSerializer
from jwt_sessions.tokens import make_refresh_token, parse_refresh_token
from tests.conftest import PASSWORD, assert_error, bearer, url
from tests.redis_servers import point_cache_at, start_redis
from tests.token_endpoints import (
    grant_introspection,
    introspect,
    post_form,
    revoke_in_another_process,
)

pytestmark = pytest.mark.django_db

ACCESS_FIELDS = {"active", "sub", "sid", "jti", "exp", "iat", "token_type", "auth_time", "amr"}


def test_a_live_access_token_is_active_and_described(api, user, tokens, gateway):
    resp = introspect(api, tokens["access"], gateway)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == ACCESS_FIELDS
    assert body["active"] is True and body["token_type"] == "access"
    assert body["sub"] == str(user.pk) and body["sid"] == tokens["session_id"]
    assert body["amr"] == ["pwd"] and body["iat"] <= body["exp"]
    assert tokens["refresh"] not in resp.content.decode()


def test_a_live_refresh_token_is_active_and_has_no_jti(api, user, tokens, gateway):
    body = introspect(api, tokens["refresh"], gateway).json()
    assert body == {"active": True, "sub": str(user.pk), "sid": tokens["session_id"],
                    "exp": body["exp"], "iat": body["iat"], "token_type": "refresh",
                    "auth_time": body["auth_time"], "amr": ["pwd"]}
    session = Session.objects.get(pk=tokens["session_id"])
    assert body["exp"] == int(session.expires_at.timestamp())


@pytest.mark.django_db(transaction=True)
def test_an_access_token_revoked_a_moment_ago_in_another_process_is_inactive(
        api, user, settings, gateway):
    """The other process shares only the database and Redis with this one; the answer
    comes from what it wrote there, not from the JWT's signature (still valid)."""
    server = None
    redis_url = os.environ.get("REDIS_URL")
    if redis_url is None:  # the embedded Redis lives in this process only: use a real one
        server = start_redis()
        redis_url = server.url
        point_cache_at(settings, redis_url)
    try:
        account = api.login_ok("gateway")["access"] if server else gateway
        tokens = api.login_ok(user.username)
        assert introspect(api, tokens["access"], account).json()["active"] is True
        revoke_in_another_process(tokens["session_id"], redis_url)
        assert introspect(api, tokens["access"], account).json() == {"active": False}
        assert introspect(api, tokens["refresh"], account).json() == {"active": False}
    finally:
        if server is not None:
            server.close()


def test_a_revocation_redis_never_heard_of_is_seen_in_the_database(
        api, tokens, gateway, redis_conn):
    introspect(api, tokens["access"], gateway)
    Session.objects.filter(pk=tokens["session_id"]).update(
        revoked_at=Session.objects.get(pk=tokens["session_id"]).created_at,
        revoked_reason=RevokeReason.ADMIN)
    redis_conn.flushdb()  # as if the revoking process's Redis write were lost
    gateway_again = api.login_ok("gateway")["access"]
    assert introspect(api, tokens["access"], gateway_again).json() == {"active": False}


def test_superseded_expired_and_forged_tokens_are_inactive(api, user, tokens, gateway, clock):
    fresh = api.refresh_ok(tokens["refresh"])
    for stale in (tokens["access"], tokens["refresh"]):  # superseded by the refresh
        assert introspect(api, stale, gateway).json() == {"active": False}
    parsed = parse_refresh_token(fresh["refresh"])
    forged = make_refresh_token(parsed.session_id, new_session_secret()).value
    for junk in (forged, "not-a-token", fresh["access"][:-2] + "xx"):
        assert introspect(api, junk, gateway).json() == {"active": False}
    clock.tick(timedelta(minutes=16))
    caller = api.login_ok("gateway")["access"]
    assert introspect(api, fresh["access"], caller).json() == {"active": False}
    assert introspect(api, fresh["refresh"], caller).json()["active"] is True


def test_a_forged_refresh_token_costs_no_bcrypt(api, tokens, gateway, bcrypt_calls):
    forged = make_refresh_token(parse_refresh_token(tokens["refresh"]).session_id,
                                new_session_secret()).value
    assert introspect(api, forged, gateway).json() == {"active": False}
    assert introspect(api, tokens["refresh"], gateway).json()["active"] is True
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 0}


def test_the_hint_is_optional_and_a_wrong_one_changes_nothing(api, tokens, gateway):
    for token in (tokens["access"], tokens["refresh"]):
        for hint in ("access_token", "refresh_token", "id_token", ""):
            body = introspect(api, token, gateway, token_type_hint=hint).json()
            assert body["active"] is True, (token, hint)


def test_the_caller_needs_the_permission(api, user, tokens, make_user):
    other = api.login_ok(make_user().username)["access"]
    resp = introspect(api, tokens["access"], other)
    assert_error(resp, 403, "permission_denied")
    assert "sub" not in resp.content.decode()


def test_the_permission_may_come_from_a_group(api, tokens, make_user):
    from django.contrib.auth.models import Group, Permission

    gateways = Group.objects.create(name="gateways")
    gateways.permissions.add(Permission.objects.get(codename="introspect_session"))
    account = make_user()
    account.groups.add(gateways)
    caller = api.login_ok(account.username)["access"]
    assert introspect(api, tokens["access"], caller).json()["active"] is True


def test_the_caller_must_be_authenticated(api, tokens):
    assert_error(post_form(api, "introspect", {"token": tokens["access"]}), 401,
                 "not_authenticated")
    assert_error(introspect(api, tokens["access"], "garbage"), 401, "token_invalid")


def test_a_gateway_may_use_the_sites_basic_authentication(api, tokens, make_user, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": [
        "jwt_sessions.authentication.JWTSessionAuthentication",
        "rest_framework.authentication.BasicAuthentication"]}
    account = make_user("svc-gateway")
    credentials = base64.b64encode(f"svc-gateway:{PASSWORD}".encode()).decode()
    basic = {"HTTP_AUTHORIZATION": f"Basic {credentials}"}
    # Without the permission the right password is a 401 like a wrong one: no 403 tells
    # a guesser that a person's password was right.
    assert post_form(api, "introspect", {"token": tokens["access"]}, **basic).status_code == 401
    grant_introspection(account)
    resp = post_form(api, "introspect", {"token": tokens["access"]}, **basic)
    assert resp.json()["active"] is True
    wrong = base64.b64encode(b"svc-gateway:wrong").decode()
    resp = post_form(api, "introspect", {"token": tokens["access"]},
                     HTTP_AUTHORIZATION=f"Basic {wrong}")
    assert resp.status_code == 401


def test_json_bodies_are_accepted_too(api, tokens, gateway):
    resp = api.post(url("introspect"), {"token": tokens["refresh"]}, **bearer(gateway))
    assert resp.json()["active"] is True


@pytest.mark.parametrize("body,content_type", [
    ("", "application/x-www-form-urlencoded"),                       # no token
    ("token=", "application/x-www-form-urlencoded"),                 # empty token
    ("token_type_hint=access_token", "application/x-www-form-urlencoded"),
    ('{"token": "abc"}', "application/x-www-form-urlencoded"),       # JSON sent as a form
    ("token=abc", "application/json"),                               # a form sent as JSON
    ('{"token": 12}', "application/json"),                           # not a string
    ('{"token": ["a", "b"]}', "application/json"),
    ('{"token": "abc", "token_type_hint": 5}', "application/json"),
    ("[1, 2]", "application/json"),
])
def test_malformed_requests_are_400(api, gateway, body, content_type):
    resp = api.client.post(url("introspect"), data=body, content_type=content_type,
                           **bearer(gateway))
    assert resp.status_code == 400, resp.content
    json.loads(resp.content)


@pytest.mark.parametrize("data", [
    {"token": "abc"}, {"token": "abc", "token_type_hint": ""},
    {"token": "abc", "token_type_hint": 5}, {"token": "abc", "token_type_hint": None},
    {"token": ""}, {"token": 12}, {"token": None}, {"token_type_hint": "access_token"}, {},
    [1, 2], "token=abc",
    QueryDict("token=abc&token="), QueryDict("token=&token=abc"), QueryDict("token=abc&extra=1"),
])
def test_a_token_read_at_a_glance_is_one_the_serializer_accepts(data):
    """The view skips the serializer only for bodies it would accept, with the same token."""
    glance = TokenSerializer.plainly_valid_token(data)
    if glance is not None:
        serializer = TokenSerializer(data=data)
        assert serializer.is_valid(), serializer.errors
        assert serializer.validated_data["token"] == glance


def test_a_form_with_a_charset_is_read_as_the_form(api, tokens, gateway):
    resp = api.client.post(url("introspect"), data=f"token={tokens['access']}",
                           content_type="application/x-www-form-urlencoded; charset=utf-8",
                           **bearer(gateway))
    assert resp.json()["active"] is True


def test_unsupported_media_type_is_415(api, gateway):
    resp = api.client.post(url("introspect"), data={"token": "x"}, **bearer(gateway))  # multipart
    assert resp.status_code == 415


@pytest.mark.parametrize("token", ["x" * 100_000, "a.b.c", "\x00", "é" * 50, "." * 8193])
def test_huge_or_strange_tokens_are_inactive(api, gateway, token):
    resp = introspect(api, token, gateway)
    assert resp.status_code == 200 and resp.json() == {"active": False}


def test_introspection_is_throttled_per_caller(api, tokens, gateway, settings, clock):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_introspect": "2/min"}}
    for _ in range(2):
        assert introspect(api, tokens["access"], gateway).status_code == 200
    assert_error(introspect(api, tokens["access"], gateway), 429, "throttled")
