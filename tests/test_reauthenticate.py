"""Step-up: `recent_authentication(max_age)` asks for a recent password (RFC 9470), and
POST reauthenticate/ gives one: a new pair for the same session, with a fresh auth_time."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.signals import user_login_failed
from django.test import Client
from django.utils import translation
from rest_framework.test import APIRequestFactory

from jwt_sessions import refresh
from jwt_sessions.exceptions import ReauthenticationRequired, TokenInvalid
from jwt_sessions.models import Session
from jwt_sessions.permissions import recent_authentication
from jwt_sessions.tokens import AccessClaims, decode_access_token, parse_refresh_token
from tests.conftest import PASSWORD, assert_error, bearer, next_ip, url

pytestmark = pytest.mark.django_db

CHALLENGE = 'Bearer error="insufficient_user_authentication", max_age="300"'


def sensitive(api, access: str):
    return api.post("/api/sensitive/", {}, **bearer(access))


def reauthenticate(api, access: str, password=PASSWORD, **extra):
    extra.setdefault("REMOTE_ADDR", next_ip())
    return api.post(url("reauthenticate"), {"password": password}, **bearer(access), **extra)


def reauthenticate_ok(api, access: str) -> dict:
    resp = reauthenticate(api, access)
    assert resp.status_code == 200, resp.content
    return resp.json()


# ------------------------------------------------------------------ the permission
def test_a_recent_login_passes_and_an_old_one_is_challenged(api, tokens, clock):
    assert sensitive(api, tokens["access"]).json() == {"done": True}
    clock.tick(timedelta(seconds=301))
    resp = sensitive(api, tokens["access"])
    assert_error(resp, 401, "reauthentication_required")
    assert resp["WWW-Authenticate"] == CHALLENGE


def test_refreshing_does_not_make_a_login_recent(api, tokens, clock):
    clock.tick(timedelta(minutes=6))
    fresh = api.refresh_ok(tokens["refresh"])
    assert_error(sensitive(api, fresh["access"]), 401, "reauthentication_required")


def test_reauthenticating_passes_the_challenge(api, tokens, clock):
    clock.tick(timedelta(minutes=6))
    fresh = reauthenticate_ok(api, tokens["access"])
    assert sensitive(api, fresh["access"]).json() == {"done": True}
    clock.tick(timedelta(minutes=6))
    assert_error(sensitive(api, fresh["access"]), 401, "reauthentication_required")


def test_without_credentials_the_answer_is_not_authenticated(api):
    resp = api.post("/api/sensitive/", {})
    assert resp.status_code == 401
    assert resp.json()["detail"]


def _request_with(claims):
    request = APIRequestFactory().post("/")
    request.auth = claims
    return request


def test_a_token_without_auth_time_is_never_recent():
    permission = recent_authentication(timedelta(minutes=5))()
    claims = AccessClaims("1", uuid.uuid4(), "jti", expires_at=None)  # type: ignore[arg-type]
    with pytest.raises(ReauthenticationRequired):
        permission.has_permission(_request_with(claims), None)
    assert permission.has_permission(_request_with("a session key"), None) is False


@pytest.mark.parametrize("max_age", [0, -1, timedelta(0)])
def test_max_age_must_be_positive(max_age):
    with pytest.raises(ValueError):
        recent_authentication(max_age)


# ------------------------------------------------------------------ reauthenticate/
def test_reauthentication_rotates_the_pair_of_the_same_session(api, tokens, redis_conn):
    before = Session.objects.get(pk=tokens["session_id"])
    fresh = reauthenticate_ok(api, tokens["access"])
    assert set(fresh) == set(tokens) and fresh["session_id"] == tokens["session_id"]
    assert_error(api.whoami(tokens["access"]), 401, "token_invalid")
    assert_error(api.refresh(tokens["refresh"]), 401, "refresh_token_invalid")
    assert api.whoami(fresh["access"]).status_code == 200
    after = Session.objects.get(pk=tokens["session_id"])
    assert after.revoked_at is None and after.auth_time > before.auth_time
    assert after.secret_check != before.secret_check  # a new session secret
    assert (parse_refresh_token(fresh["refresh"]).secret
            != parse_refresh_token(tokens["refresh"]).secret)
    redis_conn.flushdb()  # the database path checks the new secret with the new hash
    assert api.whoami(api.refresh_ok(fresh["refresh"])["access"]).status_code == 200


def test_a_wrong_password_changes_nothing_and_is_reported(api, tokens, signal_log):
    failed = signal_log(user_login_failed)
    resp = reauthenticate(api, tokens["access"], password="wrong")
    assert_error(resp, 401, "invalid_credentials")
    assert len(failed) == 1 and "wrong" not in json.dumps(failed[0]["credentials"])
    assert api.whoami(tokens["access"]).status_code == 200
    assert api.refresh(tokens["refresh"]).status_code == 200


def test_failed_attempts_count_in_the_login_per_username_bucket(api, user, tokens, settings, clock):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_login_user": "2/min"}}
    for _ in range(2):
        assert_error(reauthenticate(api, tokens["access"], password="wrong"), 401,
                     "invalid_credentials")
    assert_error(reauthenticate(api, tokens["access"]), 429, "throttled")
    assert_error(api.login(user.username), 429, "throttled")


def test_successful_attempts_do_not_count(api, user, tokens, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_login_user": "2/min"}}
    access = tokens["access"]
    for _ in range(4):
        access = reauthenticate_ok(api, access)["access"]
    api.login_ok(user.username)


def test_a_user_without_a_usable_password_cannot_reauthenticate(api, user, tokens):
    type(user).objects.filter(pk=user.pk).update(password="!unusable")
    assert_error(reauthenticate(api, tokens["access"]), 401, "invalid_credentials")


def test_the_access_token_must_be_live(api, tokens):
    assert_error(api.post(url("reauthenticate"), {"password": PASSWORD}), 401,
                 "not_authenticated")
    fresh = api.refresh_ok(tokens["refresh"])
    assert_error(reauthenticate(api, tokens["access"]), 401, "token_invalid")
    api.logout(fresh["access"])
    assert_error(reauthenticate(api, fresh["access"]), 401, "session_revoked")


def test_a_refresh_between_check_and_rotation_wins(api, user, tokens):
    """The compare-and-swap holds the row to the pair the caller authenticated with."""
    claims = decode_access_token(tokens["access"])
    api.refresh_ok(tokens["refresh"])
    with pytest.raises(TokenInvalid):
        refresh.reauthenticate(claims, user)


@pytest.mark.parametrize("body", [{}, {"password": 123}, {"password": None}, [PASSWORD]])
def test_malformed_bodies_are_400(api, tokens, body):
    resp = api.post(url("reauthenticate"), body, **bearer(tokens["access"]),
                    REMOTE_ADDR=next_ip())
    assert resp.status_code == 400, resp.content


@pytest.mark.django_db(transaction=True)
def test_cookie_mode_puts_the_new_refresh_token_in_the_cookie(user, jwt_settings):
    jwt_settings(REFRESH_COOKIE={})
    browser = Client(enforce_csrf_checks=True)
    login = browser.post(url("login"), json.dumps({"username": user.username,
                                                   "password": PASSWORD}),
                         content_type="application/json", REMOTE_ADDR=next_ip())
    old_cookie = login.cookies["jwt_sessions_refresh"].value
    resp = browser.post(url("reauthenticate"), json.dumps({"password": PASSWORD}),
                        content_type="application/json", REMOTE_ADDR=next_ip(),
                        **bearer(login.json()["access"]))
    assert resp.status_code == 200, resp.content
    assert "refresh" not in resp.json()
    new_cookie = resp.cookies["jwt_sessions_refresh"]
    assert new_cookie["httponly"] and new_cookie.value != old_cookie
    assert len(new_cookie.value) == 107
    browser.cookies["csrftoken"] = "k" * 32
    refreshed = browser.post(url("refresh"), "{}", content_type="application/json",
                             HTTP_X_CSRFTOKEN="k" * 32, REMOTE_ADDR=next_ip())
    assert refreshed.status_code == 200, refreshed.content


def test_the_challenge_detail_translates_and_its_code_does_not(api, tokens, clock):
    clock.tick(timedelta(minutes=6))
    with translation.override("de"):
        body = assert_error(sensitive(api, tokens["access"]), 401, "reauthentication_required")
    assert body["detail"] == "Bitte bestätigen Sie Ihr Passwort, um fortzufahren."


def test_reauthenticating_with_a_changed_password_rebinds_the_session(api, user, tokens):
    """A password changed behind the ORM's back ends the session at its next refresh,
    unless its user proves the new password first."""
    type(user).objects.filter(pk=user.pk).update(password=make_password("New-pa55word"))
    assert_error(reauthenticate(api, tokens["access"]), 401, "invalid_credentials")
    fresh = reauthenticate(api, tokens["access"], password="New-pa55word")
    assert fresh.status_code == 200, fresh.content
    assert api.refresh(fresh.json()["refresh"]).status_code == 200
