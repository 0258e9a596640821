"""POST revoke/ (RFC 7009): holding a token is enough to end its session; 200 whatever
happened, so the endpoint tells nobody whether a token was known."""
from __future__ import annotations

import json

import pytest

from jwt_sessions import signals
from jwt_sessions.crypto import new_session_secret
from jwt_sessions.models import RevokeReason, Session
from jwt_sessions.tokens import make_refresh_token, parse_refresh_token
from tests.conftest import assert_error, url
from tests.token_endpoints import post_form

pytestmark = pytest.mark.django_db


def revoke(api, token: str, **fields):
    return post_form(api, "revoke", {"token": token, **fields})


def assert_silent_200(resp) -> None:
    assert resp.status_code == 200, resp.content
    assert resp.content == b""


def reason_of(tokens: dict) -> str:
    return Session.objects.get(pk=tokens["session_id"]).revoked_reason


@pytest.mark.parametrize("kind", ["access", "refresh"])
def test_revoking_a_live_token_ends_its_session(api, tokens, kind, signal_log,
                                                django_capture_on_commit_callbacks):
    revoked = signal_log(signals.session_revoked)
    with django_capture_on_commit_callbacks(execute=True):
        assert_silent_200(revoke(api, tokens[kind]))
    assert reason_of(tokens) == RevokeReason.API
    assert [call["reason"] for call in revoked] == [RevokeReason.API]
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")


def test_the_previous_refresh_token_counts_too(api, tokens):
    api.refresh_ok(tokens["refresh"])
    assert_silent_200(revoke(api, tokens["refresh"]))
    assert reason_of(tokens) == RevokeReason.API


def test_a_made_up_secret_with_a_real_session_id_revokes_nothing_and_costs_no_bcrypt(
        api, tokens, bcrypt_calls):
    forged = make_refresh_token(parse_refresh_token(tokens["refresh"]).session_id,
                                new_session_secret()).value
    assert_silent_200(revoke(api, forged))
    assert reason_of(tokens) == ""
    assert api.whoami(tokens["access"]).status_code == 200
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 0}


def test_a_superseded_access_token_revokes_nothing(api, tokens):
    fresh = api.refresh_ok(tokens["refresh"])
    assert_silent_200(revoke(api, tokens["access"]))
    assert api.whoami(fresh["access"]).status_code == 200


@pytest.mark.parametrize("token", ["unknown", "x" * 100_000, "a.b.c", "\x00"])
def test_unknown_tokens_get_the_same_answer(api, tokens, token):
    assert_silent_200(revoke(api, token))
    assert api.whoami(tokens["access"]).status_code == 200


def test_revoking_twice_is_fine(api, tokens):
    assert_silent_200(revoke(api, tokens["refresh"]))
    assert_silent_200(revoke(api, tokens["refresh"]))
    assert_silent_200(revoke(api, tokens["access"]))


def test_json_bodies_and_hints_are_accepted(api, tokens):
    resp = api.post(url("revoke"), {"token": tokens["access"], "token_type_hint": "refresh_token"})
    assert_silent_200(resp)
    assert reason_of(tokens) == RevokeReason.API


@pytest.mark.parametrize("body,content_type", [
    ("", "application/x-www-form-urlencoded"),
    ("token=", "application/x-www-form-urlencoded"),
    ('{"token": "abc"}', "application/x-www-form-urlencoded"),
    ("token=abc", "application/json"),
    ('{"token": null}', "application/json"),
])
def test_malformed_requests_are_400(api, body, content_type):
    resp = api.client.post(url("revoke"), data=body, content_type=content_type)
    assert resp.status_code == 400, resp.content
    json.loads(resp.content)


def test_revocation_is_throttled_like_refresh(api, tokens, settings, clock):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_refresh": "2/min"}}
    ip = {"REMOTE_ADDR": "10.99.0.1"}
    for _ in range(2):
        assert_silent_200(post_form(api, "revoke", {"token": "unknown"}, **ip))
    assert_error(post_form(api, "revoke", {"token": tokens["access"]}, **ip), 429, "throttled")
    assert api.whoami(tokens["access"]).status_code == 200
