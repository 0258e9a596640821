"""Refresh cookie mode: the refresh token lives in an HttpOnly cookie scoped to
the app's prefix, and every use of that cookie is CSRF-checked like a Django form."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from jwt_sessions.checks import check_settings
from jwt_sessions.models import Session
from tests.conftest import PASSWORD, assert_error, bearer, next_ip, url

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "jwt_sessions_refresh"
CSRF = "k" * 32  # a well-formed CSRF secret, as a browser would hold in `csrftoken`


@pytest.fixture
def cookie_mode(jwt_settings):
    jwt_settings(REFRESH_COOKIE={})


@pytest.fixture
def csrf_client(cookie_mode) -> Client:
    """A client that enforces CSRF, as a browser session would be checked."""
    return Client(enforce_csrf_checks=True)


def post(client: Client, name: str, body=None, csrf: bool = False, **extra):
    if csrf:
        client.cookies["csrftoken"] = CSRF
        extra["HTTP_X_CSRFTOKEN"] = CSRF
    return client.post(url(name), json.dumps(body or {}), content_type="application/json",
                       REMOTE_ADDR=next_ip(), **extra)


def login(client: Client, user) -> dict:
    resp = post(client, "login", {"username": user.username, "password": PASSWORD})
    assert resp.status_code == 200, resp.content
    return resp.json()


def test_login_sets_the_cookie_and_no_refresh_in_the_body(csrf_client, user):
    resp = post(csrf_client, "login", {"username": user.username, "password": PASSWORD})
    assert "refresh" not in resp.json() and resp.json()["access"]
    cookie = resp.cookies[NAME]
    assert len(cookie.value) == 107
    assert cookie["httponly"] and cookie["secure"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/auth/"
    assert cookie["domain"] == ""
    assert int(cookie["max-age"]) > 29 * 86400
    assert "csrftoken" in resp.cookies  # the client gets what it needs to refresh


def test_cookie_is_not_secure_under_debug(csrf_client, user, settings):
    settings.DEBUG = True
    resp = post(csrf_client, "login", {"username": user.username, "password": PASSWORD})
    assert not resp.cookies[NAME]["secure"]
    assert resp.cookies[NAME]["httponly"]


def test_cookie_options_are_overridable(user, jwt_settings):
    jwt_settings(REFRESH_COOKIE={"name": "rt", "path": "/", "domain": "example.com",
                                 "secure": False, "samesite": "Strict"})
    resp = post(Client(), "login", {"username": user.username, "password": PASSWORD})
    cookie = resp.cookies["rt"]
    assert (cookie["path"], cookie["domain"], cookie["samesite"]) == (
        "/", "example.com", "Strict")
    assert not cookie["secure"] and cookie["httponly"]  # HttpOnly cannot be turned off


def test_refresh_from_the_cookie_needs_a_csrf_token(csrf_client, user):
    login(csrf_client, user)
    before = csrf_client.cookies[NAME].value
    assert_error(post(csrf_client, "refresh"), 403, "csrf_failed")
    csrf_client.cookies["csrftoken"] = CSRF
    assert_error(post(csrf_client, "refresh", HTTP_X_CSRFTOKEN="j" * 32), 403, "csrf_failed")
    assert csrf_client.cookies[NAME].value == before  # nothing rotated by the refusals
    resp = post(csrf_client, "refresh", csrf=True)
    assert resp.status_code == 200, resp.content
    assert "refresh" not in resp.json()
    assert resp.cookies[NAME].value not in ("", before)


def test_refresh_with_the_login_csrf_cookie(csrf_client, user):
    login(csrf_client, user)  # the login answer set `csrftoken`: a SPA echoes it back
    token = csrf_client.cookies["csrftoken"].value
    resp = post(csrf_client, "refresh", HTTP_X_CSRFTOKEN=token)
    assert resp.status_code == 200, resp.content


def test_refresh_token_in_the_body_still_works(cookie_mode, api, user):
    resp = api.login(user.username)
    token = resp.cookies[NAME].value
    fresh = api.client.post(url("refresh"), json.dumps({"refresh": token}),
                            content_type="application/json")
    assert fresh.status_code == 200 and "refresh" not in fresh.json()


def cleared(resp) -> bool:
    cookie = resp.cookies.get(NAME)
    return cookie is not None and cookie.value == "" and cookie["path"] == "/auth/" and (
        cookie["max-age"] == 0 or "1970" in cookie["expires"])


def test_bearer_logout_clears_the_cookie(csrf_client, user):
    data = login(csrf_client, user)
    resp = post(csrf_client, "logout", **bearer(data["access"]))  # Bearer: no CSRF needed
    assert resp.status_code == 204 and cleared(resp)
    assert Session.objects.get(pk=data["session_id"]).revoked_reason == "logout"


def test_cookie_logout_needs_csrf_then_revokes_the_cookies_session(csrf_client, user):
    data = login(csrf_client, user)
    assert_error(post(csrf_client, "logout"), 403, "csrf_failed")
    assert Session.objects.get(pk=data["session_id"]).revoked_at is None
    resp = post(csrf_client, "logout", csrf=True)
    assert resp.status_code == 204 and cleared(resp)
    assert Session.objects.get(pk=data["session_id"]).revoked_reason == "logout"
    assert_error(csrf_client.get("/api/whoami/", **bearer(data["access"])), 401,
                 "session_revoked")


def test_cookie_logout_with_a_forged_cookie_revokes_nothing(csrf_client, user):
    data = login(csrf_client, user)
    csrf_client.cookies[NAME] = "A" * 107
    resp = post(csrf_client, "logout", csrf=True)
    assert_error(resp, 401, "refresh_token_invalid")
    assert cleared(resp)
    assert Session.objects.get(pk=data["session_id"]).revoked_at is None


def test_logout_without_bearer_or_cookie_is_401(csrf_client):
    assert_error(post(csrf_client, "logout", csrf=True), 401, "not_authenticated")


def test_revoked_sessions_refresh_clears_the_cookie(csrf_client, user):
    data = login(csrf_client, user)
    Session.objects.filter(pk=data["session_id"]).update(revoked_at="2000-01-01T00:00Z")
    resp = post(csrf_client, "refresh", csrf=True)
    assert_error(resp, 401, "session_revoked")
    assert cleared(resp)


def test_reused_cookie_clears_the_cookie(csrf_client, user, jwt_settings):
    jwt_settings(REFRESH_COOKIE={}, REFRESH_REUSE_GRACE=0)
    login(csrf_client, user)
    stolen = csrf_client.cookies[NAME].value
    assert post(csrf_client, "refresh", csrf=True).status_code == 200
    csrf_client.cookies[NAME] = stolen
    resp = post(csrf_client, "refresh", csrf=True)
    assert_error(resp, 401, "refresh_token_reused")
    assert cleared(resp)


@pytest.mark.parametrize("options,ok", [
    ({"name": "__Host-rt", "path": "/", "secure": True}, True),
    ({"name": "__Host-rt", "path": "/", "secure": True, "domain": "example.com"}, False),
    ({"name": "__Host-rt", "path": "/auth/", "secure": True}, False),
    ({"name": "__Host-rt", "secure": True}, False),  # default path is the prefix
    ({"name": "__Host-rt", "path": "/", "secure": False}, False),
])
def test_host_prefix_cookie_check(jwt_settings, options, ok):
    jwt_settings(REFRESH_COOKIE=options)
    ids = [message.id for message in check_settings()]
    assert ids == ([] if ok else ["jwt_sessions.E013"])


def test_host_prefix_cookie_is_secure_and_cleared_securely(user, jwt_settings):
    jwt_settings(REFRESH_COOKIE={"name": "__Host-rt", "path": "/"})
    client = Client()
    resp = post(client, "login", {"username": user.username, "password": PASSWORD})
    assert resp.cookies["__Host-rt"]["secure"] and resp.cookies["__Host-rt"]["path"] == "/"
    resp = post(client, "logout", **bearer(resp.json()["access"]))
    assert resp.cookies["__Host-rt"]["secure"]  # browsers ignore an insecure __Host- reset


def test_refresh_without_cookie_or_body_token_is_401_refresh_token_missing(csrf_client):
    """A visitor who never signed in is told apart from one whose session ended."""
    resp = post(csrf_client, "refresh", csrf=True)
    assert_error(resp, 401, "refresh_token_missing")
    assert resp["WWW-Authenticate"].startswith("Bearer")


def test_refresh_with_an_empty_cookie_is_401_refresh_token_missing(csrf_client):
    csrf_client.cookies[NAME] = ""
    assert_error(post(csrf_client, "refresh", csrf=True), 401, "refresh_token_missing")


def test_refresh_with_a_made_up_cookie_is_still_refresh_token_invalid(csrf_client):
    """Only "nothing presented" is missing: a guessed token gets the code of a bad one."""
    csrf_client.cookies[NAME] = "x" * 43
    assert_error(post(csrf_client, "refresh", csrf=True), 401, "refresh_token_invalid")


@pytest.mark.parametrize("csrf", [False, True])
@pytest.mark.parametrize("body, content_type", [
    (b"--b\r\n", "multipart/form-data"),  # no boundary: Django cannot parse it
    (b"&".join(b"f%d=1" % n for n in range(2000)), "application/x-www-form-urlencoded"),
])
def test_a_cookie_logout_with_an_unreadable_form_is_a_json_refusal(
        csrf_client, user, csrf, body, content_type):
    """The CSRF check reads a form's token from the body: one Django cannot read must be
    refused the way DRF refuses any body, not by Django's HTML error page."""
    data = login(csrf_client, user)
    extra = {}
    if csrf:
        csrf_client.cookies["csrftoken"] = CSRF
        extra["HTTP_X_CSRFTOKEN"] = CSRF
    resp = csrf_client.post(url("logout"), body, content_type=content_type,
                            REMOTE_ADDR=next_ip(), **extra)
    assert 400 <= resp.status_code < 500 and resp.json()["detail"], resp.content
    assert Session.objects.get(pk=data["session_id"]).revoked_at is None
