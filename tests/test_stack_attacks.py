"""An attacker's review of the django-allauth integration, new-device alerts, session caps
and the admin dashboard, as tests.

Each test is one attack: an allauth token pair carried to another door, or after its
session ended; a reauthentication that tries to renew a session it does not belong to;
a client string that tries to inject into the new-device email or the admin; a login
race against the session cap; an admin request without the right permission or CSRF
token. Bad input must get a 4xx answer (never a 500) and must never end or keep alive a
session it should not. An attack that still works is marked `xfail(strict=True)` with
the reason "HOLE: ...".
"""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client
from django.urls import reverse

from jwt_sessions import api as jwt_api
from jwt_sessions.dpop.errors import DPoPError
from jwt_sessions.exceptions import AuthenticationError, MaxSessionsReached
from jwt_sessions.models import RevokeReason, Session
from jwt_sessions.redis.store import astore
from jwt_sessions.tokens import decode_access_token
from tests.conftest import (
    PASSWORD,
    UA_IPHONE,
    UA_MAC_CHROME,
    Api,
    all_at_once,
    assert_error,
    bearer,
    url,
)
from tests.mmdb_builder import build_database

try:
    from tests.allauth_client import Headless, activate_totp, totp_code
except ImportError:  # the suite also runs without django-allauth
    Headless = None  # type: ignore[assignment,misc]

pytestmark = pytest.mark.django_db
needs_allauth = pytest.mark.skipif(Headless is None, reason="django-allauth is not installed")

UA_WINDOWS_FIREFOX = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 "
                      "Firefox/133.0")
HOME_IP, HOME_NEIGHBOUR_IP, ATTACKER_IP = "81.2.69.10", "81.2.69.77", "1.1.1.1"
XSS = '<img src=x onerror="alert(1)">'
DASHBOARD = "admin:jwt_sessions_session_dashboard"
CHANGELIST = "admin:jwt_sessions_session_changelist"


# ------------------------------------------------------------------ helpers
def logged_in(user, ua: str = UA_IPHONE) -> Headless:
    app = Headless(ua)
    resp = app.login(user.username)
    assert resp.status_code == 200, resp.content
    return app


def sid(app) -> uuid.UUID:
    return decode_access_token(app.access).session_id


def drf_code(access: str) -> str:
    """What the project's DRF API says of an access token: "ok" or the error code."""
    resp = Client().get("/api/whoami/", **bearer(access))
    return "ok" if resp.status_code == 200 else resp.json()["code"]


def ninja_status(settings, access: str) -> int:
    """The status a django-ninja operation guarded by JWTSessionAuth answers."""
    settings.ROOT_URLCONF = "tests.ninja_urls"
    try:
        return Client().get("/ninja/sync/whoami", **bearer(access)).status_code
    finally:
        settings.ROOT_URLCONF = "tests.urls"


def async_code(access: str) -> str:
    """What `api.aauthenticate` says of an access token: "ok" or the error code."""
    async def run() -> str:
        try:
            await jwt_api.aauthenticate(access)
            return "ok"
        except (AuthenticationError, DPoPError) as exc:
            return str(exc.get_codes()["code"])
        finally:
            await astore.aclose()

    return async_to_sync(run)()


def closed_by(access: str, act) -> dict | None:
    """Open a WebSocket with `access`, run `act()` (sync) once the events are live, and
    return what the socket was sent next (a close, or None within two seconds)."""
    import asyncio

    from asgiref.sync import sync_to_async

    from jwt_sessions import events
    from tests.test_channels import handshake

    async def then(communicator):
        await asyncio.get_running_loop().run_in_executor(None, events.wait_until_healthy, 5)
        await sync_to_async(act)()
        return await communicator.receive_output(timeout=2)

    connected, _, message = handshake(access, then=then)
    assert connected
    return message


def socket_opens(access: str) -> bool:
    """A Channels WebSocket handshake with the token (needs a transactional test)."""
    from tests.test_channels import handshake

    connected, _, _ = handshake(access)
    return bool(connected)


def errors_of(resp) -> list[str]:
    """The codes in an allauth error answer."""
    return [error.get("code", "") for error in resp.json().get("errors", [])]


def login_row(api: Api, username: str, **login) -> Session:
    return Session.objects.get(pk=api.login_ok(username, **login)["session_id"])


@pytest.fixture
def geoip(tmp_path, jwt_settings):
    """Places for the addresses above; a GeoIP city name an attacker could not choose,
    but one a careless database (or a hostile mirror of it) could carry."""
    places = {"81.2.69.0/24": ("Berlin", "Germany"),
              "1.1.1.0/24": (f"Sydney\r\nBcc: victim@evil.test\r\n{XSS}", "Australia")}
    jwt_settings(GEOIP_PATH=str(build_database(tmp_path / "city.mmdb", places)))


# ------------------------------------------------------------------ allauth: every door
@needs_allauth
def test_an_allauth_pair_opens_the_drf_ninja_and_async_doors(user, settings):
    app = logged_in(user)
    assert drf_code(app.access) == "ok"
    assert ninja_status(settings, app.access) == 200
    assert async_code(app.access) == "ok"


@needs_allauth
@pytest.mark.django_db(transaction=True)
def test_an_allauth_access_token_opens_a_websocket_until_allauths_logout(user):
    app = logged_in(user)
    assert socket_opens(app.access)
    app.logout()
    assert not socket_opens(app.access)


@needs_allauth
def test_after_allauths_logout_no_door_takes_its_access_token(user, settings):
    app = logged_in(user)
    assert app.logout().status_code == 401
    assert drf_code(app.access) == "session_revoked"
    assert ninja_status(settings, app.access) == 401
    assert async_code(app.access) == "session_revoked"


@needs_allauth
def test_after_allauths_refresh_no_door_takes_the_previous_access_token(user, settings):
    app = logged_in(user)
    old = app.access
    assert app.refresh_tokens().status_code == 200
    assert drf_code(old) == "token_invalid"
    assert ninja_status(settings, old) == 401
    assert async_code(old) == "token_invalid"
    assert drf_code(app.access) == "ok"


@needs_allauth
def test_after_allauths_logout_its_refresh_token_is_dead_at_our_own_refresh(user, api):
    app = logged_in(user)
    app.logout()
    assert api.refresh(app.refresh).status_code == 401


@needs_allauth
def test_an_allauth_refresh_token_rotated_at_our_endpoint_is_reuse_at_allauths(
        user, api, jwt_settings):
    """The thief refreshes at one door, the victim's app at the other: the reuse is seen
    whichever door each uses, and the session ends for both."""
    jwt_settings(REFRESH_REUSE_GRACE=0)
    app = logged_in(user)
    stolen = app.refresh
    thief = api.refresh_ok(stolen)
    assert app.refresh_tokens(stolen).status_code == 400
    assert Session.objects.get(pk=sid(app)).revoked_reason == RevokeReason.REUSE_DETECTED
    assert drf_code(thief["access"]) == "session_revoked"
    assert app.session().status_code == 410


@needs_allauth
def test_a_refresh_token_revoked_by_rfc7009_ends_the_allauth_session(user, api):
    from tests.token_endpoints import post_form

    app = logged_in(user)
    assert post_form(api, "revoke", {"token": app.refresh}).status_code == 200
    assert app.session().status_code == 410
    app.session_token = None
    assert app.refresh_tokens().status_code == 400


@needs_allauth
def test_a_dpop_bound_allauth_refresh_token_is_refused_at_our_refresh_without_a_proof(user, api):
    """A copied refresh token of a bound allauth session is no use at our own endpoint
    either, and trying does not end the owner's session."""
    from tests.dpop_keys import ProofKey

    key, app = ProofKey(), Headless()
    resp = app.call("post", "/auth/login", {"username": user.username, "password": PASSWORD},
                    HTTP_DPOP=key.proof("POST", "http://testserver/_allauth/app/v1/auth/login"))
    assert resp.status_code == 200, resp.content
    assert api.refresh(app.refresh).status_code == 401
    session = Session.objects.get(pk=sid(app))
    assert session.revoked_at is None and session.dpop_jkt == key.jkt


@needs_allauth
def test_anothers_refresh_token_in_my_allauth_session_gets_only_their_own_session(
        user, make_user):
    """Bob's refresh token sent with Alice's session token: the pair is Bob's (as anyone
    holding his token gets at our endpoint), Alice's allauth session stays Alice's."""
    alice, bob = logged_in(user), logged_in(make_user())
    bob_refresh = bob.refresh
    resp = alice.refresh_tokens(bob_refresh)
    assert resp.status_code == 200, resp.content
    assert decode_access_token(resp.json()["data"]["access_token"]).session_id == sid(bob)
    assert alice.session().json()["data"]["user"]["id"] == user.pk
    assert Session.objects.filter(user=user, revoked_at__isnull=True).count() == 1


@needs_allauth
def test_a_jwt_access_token_as_the_session_token_signs_in_no_one(user):
    app = logged_in(user)
    resp = app.session(HTTP_X_SESSION_TOKEN=app.access)
    assert resp.status_code in (401, 410), resp.content
    assert resp.json()["meta"].get("is_authenticated") is not True


@needs_allauth
def test_the_refresh_token_as_the_session_token_signs_in_no_one(user):
    app = logged_in(user)
    resp = app.session(HTTP_X_SESSION_TOKEN=app.refresh)
    assert resp.status_code in (401, 410), resp.content


@needs_allauth
def test_the_access_and_refresh_tokens_are_never_taken_for_each_other(user, settings):
    app = logged_in(user)
    assert app.refresh_tokens(app.access).status_code == 400
    assert drf_code(app.refresh) == "token_invalid"
    assert ninja_status(settings, app.refresh) == 401
    assert async_code(app.refresh) == "token_invalid"
    assert app.refresh_tokens().status_code == 200  # neither attempt cost the session


@needs_allauth
def test_allauths_session_token_is_no_access_token_at_our_doors(user, settings):
    app = logged_in(user)
    assert drf_code(app.session_token) == "token_invalid"
    assert ninja_status(settings, app.session_token) == 401


@needs_allauth
def test_an_access_token_of_a_non_allauth_login_stands_for_no_allauth_session(user, api):
    tokens = api.login_ok(user.username)
    logged_in(user)  # an allauth session of the same user exists
    resp = Headless().session(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert resp.status_code == 401 and resp.json()["meta"]["is_authenticated"] is False


@needs_allauth
def test_logout_with_my_session_token_and_anothers_bearer_ends_only_mine(user, make_user):
    alice, bob = logged_in(user), logged_in(make_user())
    resp = alice.call("delete", "/auth/session", HTTP_AUTHORIZATION=f"Bearer {bob.access}")
    assert resp.status_code == 401
    assert Session.objects.get(pk=sid(alice)).revoked_reason == RevokeReason.LOGOUT
    assert drf_code(bob.access) == "ok"


@needs_allauth
def test_a_second_login_in_a_signed_in_allauth_session_leaves_the_first_session_alone(
        user, make_user):
    """Alice's app, already signed in, posts Bob's credentials: allauth refuses or
    switches, but Alice's jwt session is never handed to Bob, nor Bob's to Alice."""
    bob = make_user()
    app = logged_in(user)
    first = sid(app)
    resp = app.login(bob.username)
    assert resp.status_code < 500, resp.content
    assert Session.objects.get(pk=first).user_id == user.pk
    if app.access and sid(app) != first:
        assert decode_access_token(app.access).user_id == str(bob.pk)
    assert all(str(s.user_id) in (str(user.pk), str(bob.pk)) for s in Session.objects.all())


@needs_allauth
@pytest.mark.django_db(transaction=True)
def test_allauths_logout_closes_the_sessions_open_socket(user):
    from jwt_sessions.channels import CLOSE_SESSION_REVOKED

    app = logged_in(user)
    assert closed_by(app.access, app.logout) == {"type": "websocket.close",
                                                 "code": CLOSE_SESSION_REVOKED}


@needs_allauth
@pytest.mark.django_db(transaction=True)
def test_allauths_session_token_opens_no_websocket(user):
    app = logged_in(user)
    assert not socket_opens(app.session_token)


@needs_allauth
def test_introspection_says_inactive_after_allauths_logout(user, api, gateway):
    from tests.token_endpoints import introspect

    app = logged_in(user)
    assert introspect(api, app.access, gateway).json()["active"] is True
    app.logout()
    assert introspect(api, app.access, gateway).json() == {"active": False}
    assert introspect(api, app.refresh, gateway).json() == {"active": False}


@needs_allauth
def test_a_forged_refresh_token_at_allauth_costs_no_bcrypt(user, bcrypt_calls):
    from tests.test_strangers_cost_no_bcrypt import forged

    app = logged_in(user)
    bcrypt_calls.update(hashpw=0, checkpw=0)
    for _ in range(3):
        assert app.refresh_tokens(forged(sid(app))).status_code == 400
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 0}
    assert app.refresh_tokens().status_code == 200  # the genuine session is untouched


@needs_allauth
def test_a_copied_dpop_bound_allauth_access_token_opens_no_door(user, settings):
    from tests.dpop_keys import ProofKey

    key, app = ProofKey(), Headless()
    resp = app.call("post", "/auth/login", {"username": user.username, "password": PASSWORD},
                    HTTP_DPOP=key.proof("POST", "http://testserver/_allauth/app/v1/auth/login"))
    assert resp.status_code == 200, resp.content
    assert drf_code(app.access) != "ok"
    assert ninja_status(settings, app.access) == 401
    assert async_code(app.access) != "ok"


@needs_allauth
def test_a_copied_dpop_bound_access_token_cannot_log_its_owner_out_of_allauth(user):
    from tests.dpop_keys import ProofKey

    key, app = ProofKey(), Headless()
    app.call("post", "/auth/login", {"username": user.username, "password": PASSWORD},
             HTTP_DPOP=key.proof("POST", "http://testserver/_allauth/app/v1/auth/login"))
    thief = Headless()
    resp = thief.call("delete", "/auth/session", HTTP_AUTHORIZATION=f"Bearer {app.access}")
    assert resp.status_code == 401
    assert Session.objects.get(pk=sid(app)).revoked_at is None
    assert app.session().status_code == 200


@needs_allauth
def test_a_user_with_mfa_cannot_skip_it_at_our_own_login(api, user):
    activate_totp(user)
    assert Headless().login(user.username).status_code == 401  # allauth asks for the code
    resp = api.login(user.username)
    assert resp.status_code != 200, resp.content
    assert not Session.objects.exists()


@needs_allauth
def test_an_allauth_password_reset_ends_the_thiefs_sessions_too(make_user, mailoutbox):
    import re

    victim = make_user(email="victim@example.com")
    thief = logged_in(victim, UA_WINDOWS_FIREFOX)
    bearer_thief = logged_in(victim, UA_WINDOWS_FIREFOX)
    reset = Headless()
    assert reset.call("post", "/auth/password/request",
                      {"email": "victim@example.com"}).status_code == 200
    key = re.search(r"/account/password/reset/key/(\S+)", mailoutbox[-1].body).group(1)
    resp = reset.call("post", "/auth/password/reset", {"key": key, "password": "N3w-pa55word!"})
    assert resp.status_code in (200, 401), resp.content
    assert drf_code(thief.access) == "session_revoked"
    assert thief.session().status_code in (401, 410)
    bearer_thief.session_token = None
    assert bearer_thief.session(HTTP_AUTHORIZATION=f"Bearer {bearer_thief.access}"
                                ).status_code == 401


@needs_allauth
def test_the_projects_user_rule_refuses_an_allauth_login(user, jwt_settings):
    jwt_settings(USER_AUTHENTICATION_RULE="tests.rules.staff_only")
    app = Headless()
    resp = app.login(user.username)
    assert resp.status_code == 401, resp.content
    assert app.access is None and app.session_token is None
    assert not Session.objects.exists()


@needs_allauth
@pytest.mark.parametrize("change", [{"is_active": False}, {"password": "md5$x$y"}])
def test_allauths_refresh_is_refused_once_the_user_changed_behind_the_orm(user, change):
    app = logged_in(user)
    type(user).objects.filter(pk=user.pk).update(**change)
    app.session_token = None
    assert app.refresh_tokens().status_code == 400
    assert Session.objects.get(pk=sid(app)).rotated_at is None  # nothing was signed


@needs_allauth
@pytest.mark.parametrize("spelling", ["forwarded_for", "ipv6_in_one_64"])
def test_allauths_refresh_throttle_counts_the_client_not_its_spelling(user, settings, clock,
                                                                      spelling):
    from tests.test_strangers_cost_no_bcrypt import forged

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_refresh": "3/min"}}
    app = logged_in(user)
    statuses = []
    for n in range(4):
        extra = ({"HTTP_X_FORWARDED_FOR": f"192.0.2.{n}", "REMOTE_ADDR": app.ip}
                 if spelling == "forwarded_for" else {"REMOTE_ADDR": f"2001:db8:1:2::{n + 1}"})
        statuses.append(app.call("post", "/tokens/refresh",
                                 {"refresh_token": forged(sid(app))}, **extra).status_code)
    assert statuses == [400, 400, 400, 429]


# ------------------------------------------------------------------ allauth: bad input
@needs_allauth
@pytest.mark.parametrize("token", [123, None, ["a"], {"a": 1}, "\x00", "a\x00b" * 100,
                                   "é" * 3000, True])
def test_a_malformed_refresh_token_is_allauths_400_and_ends_nothing(user, token):
    app = logged_in(user)
    resp = app.call("post", "/tokens/refresh", {"refresh_token": token})
    assert resp.status_code == 400, resp.content
    assert drf_code(app.access) == "ok"


@needs_allauth
@pytest.mark.parametrize("body", ["{", "[]", '"x"', "null", "\x00"])
def test_an_unreadable_body_to_allauths_refresh_is_a_4xx(user, body):
    app = logged_in(user)
    resp = app.client.post("/_allauth/app/v1/tokens/refresh", data=body,
                           content_type="application/json", REMOTE_ADDR=app.ip)
    assert 400 <= resp.status_code < 500, resp.content
    assert drf_code(app.access) == "ok"


@needs_allauth
@pytest.mark.parametrize("token", ["x" * 10_000, "é" * 50, "../../etc/passwd", "a" * 40])
def test_a_malformed_session_token_signs_in_no_one_and_is_no_500(user, token):
    logged_in(user)
    resp = Headless().session(HTTP_X_SESSION_TOKEN=token)
    assert resp.status_code in (401, 410), resp.content


@needs_allauth
def test_a_session_token_with_a_nul_character_is_no_500(user):
    logged_in(user)
    client = Headless().client
    client.raise_request_exception = False
    resp = client.get("/_allauth/app/v1/auth/session", HTTP_X_SESSION_TOKEN="\x00" * 8)
    assert resp.status_code in (401, 410), resp.status_code


@needs_allauth
@pytest.mark.parametrize("header", ["Bearer \x00", "Bearer " + "x" * 20_000, "DPoP ",
                                    "Bearer é", "DPoP a.b.c", "Bearer a.b.c"])
def test_a_malformed_authorization_header_at_allauth_is_no_500(user, header):
    app = logged_in(user)
    app.session_token = None
    resp = app.session(HTTP_AUTHORIZATION=header)
    assert resp.status_code == 401, resp.content


@needs_allauth
@pytest.mark.parametrize("body", [{"username": ["x"], "password": PASSWORD},
                                  {"username": "u\x00", "password": PASSWORD},
                                  {"username": "x" * 10_000, "password": "p"}])
def test_a_malformed_login_is_a_4xx_and_opens_nothing(user, body):
    resp = Headless().call("post", "/auth/login", body)
    assert 400 <= resp.status_code < 500, resp.content
    assert not Session.objects.exists()


@needs_allauth
@pytest.mark.parametrize("agent", ["\x00" * 50, "é" * 5000, "\U0001F600" * 3000,
                                   "Mozilla/5.0 " + "(x) " * 2000])
def test_a_hostile_user_agent_logs_in_through_allauth(user, agent):
    app = Headless(agent)
    resp = app.login(user.username)
    assert resp.status_code == 200, resp.content
    session = Session.objects.get(pk=sid(app))
    assert "\x00" not in session.user_agent and len(session.user_agent) <= 1000


# ------------------------------------------------------------------ step-up
@needs_allauth
def test_reauthenticating_one_allauth_session_leaves_the_other_stale(user, clock):
    phone, laptop = logged_in(user), logged_in(user)
    before = Session.objects.get(pk=sid(laptop)).auth_time
    clock.tick(timedelta(minutes=10))
    assert phone.reauthenticate().status_code == 200
    assert Session.objects.get(pk=sid(laptop)).auth_time == before
    laptop.refresh_tokens()
    assert laptop.api("/api/sensitive/", method="post").status_code == 401


@needs_allauth
def test_a_failed_totp_reauthentication_renews_nothing(user, clock):
    secret = activate_totp(user)
    app = Headless()
    app.login(user.username)
    assert app.mfa_authenticate(totp_code(secret)).status_code == 200
    before = Session.objects.get(pk=sid(app))
    clock.tick(timedelta(minutes=10))
    assert app.mfa_reauthenticate("000000").status_code == 400
    after = Session.objects.get(pk=sid(app))
    assert (after.auth_time, after.amr) == (before.auth_time, before.amr)


@needs_allauth
def test_reauthenticating_by_a_superseded_access_token_renews_nothing(user, clock):
    app = logged_in(user)
    old = app.access
    app.refresh_tokens()
    before = Session.objects.get(pk=sid(app)).auth_time
    clock.tick(timedelta(minutes=10))
    app.session_token = None
    resp = app.call("post", "/auth/reauthenticate", {"password": PASSWORD},
                    HTTP_AUTHORIZATION=f"Bearer {old}")
    assert resp.status_code == 401, resp.content
    assert Session.objects.get(pk=sid(app)).auth_time == before


@needs_allauth
def test_reauthenticating_an_expired_session_revives_nothing(user, clock):
    app = logged_in(user)
    session_id = sid(app)
    clock.tick(timedelta(days=31))
    assert app.reauthenticate().status_code == 410
    session = Session.objects.get(pk=session_id)
    assert session.expires_at < session.auth_time + timedelta(days=31)
    app.session_token = None
    assert app.refresh_tokens().status_code == 400


@needs_allauth
def test_a_password_login_does_not_satisfy_a_passkey_demand(user):
    app = logged_in(user)
    assert_error(app.api("/api/passkey-only/", method="post"), 401, "reauthentication_required")


@needs_allauth
def test_a_password_reauthentication_after_a_passkey_step_up_drops_the_passkey(user):
    """amr says how the session last proved who its user is: a later password check must
    not inherit the passkey, whichever door checks it (allauth's or ours)."""
    from allauth.account.internal.flows.login import record_authentication
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    app = logged_in(user)
    request = RequestFactory().post("/")
    request.session = SessionStore(app.session_token)
    request.user = user
    record_authentication(request, user, "mfa", type="webauthn", reauthenticated=True)
    app.refresh_tokens()
    assert app.api("/api/passkey-only/", method="post").status_code == 200
    assert app.reauthenticate().status_code == 200
    app.refresh_tokens()
    assert decode_access_token(app.access).amr == ("pwd",)
    assert_error(app.api("/api/passkey-only/", method="post"), 401, "reauthentication_required")


def test_our_reauthenticate_records_a_password_not_the_previous_methods(api, user):
    access = jwt_api.issue_tokens(user, amr=["hwk"])["access"]
    assert Client().post("/api/passkey-only/", **bearer(access)).status_code == 200
    resp = api.post(url("reauthenticate"), {"password": PASSWORD}, **bearer(access))
    assert resp.status_code == 200, resp.content
    assert decode_access_token(resp.json()["access"]).amr == ("pwd",)
    assert_error(Client().post("/api/passkey-only/", **bearer(resp.json()["access"])), 401,
                 "reauthentication_required")


@pytest.mark.parametrize("claim", ["amr", "auth_time"])
def test_a_claims_hook_cannot_spoof_the_authentication_methods(api, user, jwt_settings, claim):
    jwt_settings(CLAIMS_HOOK=lambda user, session_id: {claim: ["hwk"]})
    resp = api.login(user.username)
    assert resp.status_code == 500 and resp.json()["code"] == "claims_hook_failed"
    assert not Session.objects.exists()


@needs_allauth
def test_a_claims_hook_spoofing_amr_opens_no_allauth_login(user, jwt_settings):
    jwt_settings(CLAIMS_HOOK=lambda user, session_id: {"amr": ["hwk"]})
    app = Headless()
    client = app.client
    client.raise_request_exception = False
    resp = client.post("/_allauth/app/v1/auth/login", data=json.dumps(
        {"username": user.username, "password": PASSWORD}), content_type="application/json",
        REMOTE_ADDR=app.ip)
    assert resp.status_code >= 400
    assert not Session.objects.exists()
    assert b"access_token" not in resp.content and b"session_token" not in resp.content


@needs_allauth
def test_a_failing_claims_hook_at_allauth_is_a_json_refusal_and_no_login(user, jwt_settings):
    from django.contrib.sessions.models import Session as DjangoSession

    jwt_settings(CLAIMS_HOOK=lambda user, session_id: {"amr": ["hwk"]})
    client = Headless().client
    client.raise_request_exception = False
    resp = client.post("/_allauth/app/v1/auth/login", data=json.dumps(
        {"username": user.username, "password": PASSWORD}), content_type="application/json")
    assert resp["Content-Type"].startswith("application/json"), resp.content[:80]
    assert errors_of(resp) == ["claims_hook_failed"]
    signed_in = [s for s in DjangoSession.objects.all() if "_auth_user_id" in s.get_decoded()]
    assert signed_in == []


# ------------------------------------------------------------------ new device: the email
@pytest.mark.django_db(transaction=True)
def test_a_hostile_place_name_cannot_inject_mail_headers(api, make_user, geoip, jwt_settings):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    alice = make_user(email="alice@example.com")
    api.login_ok(alice.username, ip=HOME_IP)
    api.login_ok(alice.username, ua=UA_IPHONE, ip=ATTACKER_IP)
    (message,) = mail.outbox
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.to == ["alice@example.com"] and message.bcc == [] and message.cc == []
    headers = message.message()
    assert headers.get_all("Bcc") is None
    assert "victim@evil.test" not in str(headers["To"])


@pytest.mark.django_db(transaction=True)
def test_a_hostile_user_agent_and_place_are_escaped_in_the_html_email(api, make_user, geoip,
                                                                      jwt_settings):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    alice = make_user(email="alice@example.com")
    api.login_ok(alice.username, ip=HOME_IP)
    api.login_ok(alice.username, ua=f"{XSS}<a href='http://evil.test'>x</a>", ip=ATTACKER_IP)
    (html, _), = mail.outbox[0].alternatives
    assert "<img" not in html and "<a href" not in html and "onerror=\"" not in html


@pytest.mark.django_db(transaction=True)
def test_a_hostile_user_agent_cannot_inject_mail_headers(api, make_user, jwt_settings):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    alice = make_user(email="alice@example.com")
    api.login_ok(alice.username, ip=HOME_IP)
    api.login_ok(alice.username, ua="Evil\r\nBcc: victim@evil.test\r\n\r\nbody",
                 ip=ATTACKER_IP)
    (message,) = mail.outbox
    assert message.message().get_all("Bcc") is None and message.bcc == []


@needs_allauth
@pytest.mark.django_db(transaction=True)
def test_a_failing_mail_server_does_not_fail_an_allauth_login(make_user, jwt_settings,
                                                             settings):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    settings.EMAIL_BACKEND = "tests.test_new_devices.BrokenBackend"
    alice = make_user(email="alice@example.com")
    logged_in(alice, UA_MAC_CHROME)
    app = logged_in(alice, UA_WINDOWS_FIREFOX)
    assert "device" in Session.objects.get(pk=sid(app)).novelty
    assert drf_code(app.access) == "ok"


@pytest.mark.django_db(transaction=True)
def test_a_huge_user_agent_makes_an_email_of_bounded_size(api, make_user, jwt_settings):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    alice = make_user(email="alice@example.com")
    api.login_ok(alice.username, ip=HOME_IP)
    api.login_ok(alice.username, ua="Mozilla/5.0 " + "\U0001F600" * 100_000, ip=ATTACKER_IP)
    (message,) = mail.outbox
    assert len(message.body) < 5_000


# ------------------------------------------------------------------ new device: suppression
def test_an_untrusted_forwarded_for_cannot_borrow_the_users_network(api, user):
    api.login_ok(user.username, ip=HOME_IP)
    row = login_row(api, user.username, ip=ATTACKER_IP, HTTP_X_FORWARDED_FOR=HOME_NEIGHBOUR_IP)
    assert row.novelty == ["network"] and row.ip_address == ATTACKER_IP


def test_a_forged_forwarded_for_behind_one_proxy_cannot_borrow_the_users_network(
        api, user, settings):
    """Behind one proxy, the client's own X-Forwarded-For entries come before the one the
    proxy appends: only that last one is the client."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    api.login_ok(user.username, ip="10.0.0.1", HTTP_X_FORWARDED_FOR=HOME_IP)
    row = login_row(api, user.username, ip="10.0.0.1",
                    HTTP_X_FORWARDED_FOR=f"{HOME_NEIGHBOUR_IP}, {ATTACKER_IP}")
    assert row.ip_address == ATTACKER_IP and row.novelty == ["network"]


def test_refreshing_a_stolen_token_from_another_device_teaches_nothing(api, user):
    """The thief refreshes the victim's token from their own machine, then logs in with
    the stolen password from it: that login is still from a new device and network."""
    victim = api.login_ok(user.username, ip=HOME_IP)
    api.refresh(victim["refresh"], HTTP_USER_AGENT=UA_WINDOWS_FIREFOX, REMOTE_ADDR=ATTACKER_IP)
    row = login_row(api, user.username, ua=UA_WINDOWS_FIREFOX, ip=ATTACKER_IP)
    assert row.novelty == ["device", "network"]


def test_reauthenticating_from_another_device_teaches_nothing(api, user):
    victim = api.login_ok(user.username, ip=HOME_IP)
    resp = api.post(url("reauthenticate"), {"password": PASSWORD}, **bearer(victim["access"]),
                    HTTP_USER_AGENT=UA_WINDOWS_FIREFOX, REMOTE_ADDR=ATTACKER_IP)
    assert resp.status_code == 200
    row = login_row(api, user.username, ua=UA_WINDOWS_FIREFOX, ip=ATTACKER_IP)
    assert row.novelty == ["device", "network"]


@pytest.mark.parametrize("attempt", ["wrong_password", "refused_by_the_cap", "inactive"])
def test_a_failed_login_from_a_device_teaches_nothing(api, user, jwt_settings, attempt):
    api.login_ok(user.username, ip=HOME_IP)
    if attempt == "wrong_password":
        assert api.login(user.username, "wrong", ua=UA_IPHONE, ip=ATTACKER_IP).status_code == 401
    elif attempt == "refused_by_the_cap":
        jwt_settings(MAX_SESSIONS_PER_USER=1, MAX_SESSIONS_POLICY="refuse")
        assert api.login(user.username, ua=UA_IPHONE, ip=ATTACKER_IP).status_code == 403
        jwt_settings(MAX_SESSIONS_PER_USER=None)
    else:
        type(user).objects.filter(pk=user.pk).update(is_active=False)
        assert api.login(user.username, ua=UA_IPHONE, ip=ATTACKER_IP).status_code == 401
        type(user).objects.filter(pk=user.pk).update(is_active=True)
    assert Session.objects.count() == 1
    assert login_row(api, user.username, ua=UA_IPHONE, ip=ATTACKER_IP).novelty == [
        "device", "network"]


@pytest.mark.django_db(transaction=True)  # the announcement waits for the commit
def test_a_login_without_a_user_agent_from_elsewhere_still_alerts(api, user, signal_log):
    from jwt_sessions import signals

    heard = signal_log(signals.new_device_login)
    api.login_ok(user.username, ip=HOME_IP)
    row = login_row(api, user.username, ua="", ip=ATTACKER_IP)
    assert row.novelty == ["network"]
    assert [call["novelty"] for call in heard] == [["network"]]


def test_another_users_sessions_from_my_device_do_not_hide_a_login_to_me(api, user, make_user):
    """The attacker first signs in to their own account from their machine: the login to
    the victim's account from it is still new to the victim."""
    api.login_ok(user.username, ip=HOME_IP)
    api.login_ok(make_user().username, ua=UA_WINDOWS_FIREFOX, ip=ATTACKER_IP)
    row = login_row(api, user.username, ua=UA_WINDOWS_FIREFOX, ip=ATTACKER_IP)
    assert row.novelty == ["device", "network"]


def test_the_device_list_marks_the_attackers_session_for_the_victim(api, user):
    victim = api.login_ok(user.username, ip=HOME_IP)
    thief = api.login_ok(user.username, ua=UA_WINDOWS_FIREFOX, ip=ATTACKER_IP)
    rows = {row["id"]: row for row in api.sessions(victim["access"]).json()}
    assert rows[thief["session_id"]]["new_device"] is True
    assert rows[victim["session_id"]]["new_device"] is False


# ------------------------------------------------------------------ session caps
def test_an_evicted_session_cannot_refresh_and_no_door_takes_it(api, user, jwt_settings,
                                                                 settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1)
    evicted = api.login_ok(user.username)
    api.login_ok(user.username)
    assert api.refresh(evicted["refresh"]).status_code == 401
    assert drf_code(evicted["access"]) == "session_revoked"
    assert ninja_status(settings, evicted["access"]) == 401
    assert async_code(evicted["access"]) == "session_revoked"
    assert Session.objects.active().for_user(user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_eviction_by_the_cap_closes_the_evicted_sessions_socket(api, user, jwt_settings):
    from jwt_sessions.channels import CLOSE_SESSION_REVOKED

    jwt_settings(MAX_SESSIONS_PER_USER=1)
    evicted = api.login_ok(user.username)
    assert closed_by(evicted["access"], lambda: api.login_ok(user.username)) == {
        "type": "websocket.close", "code": CLOSE_SESSION_REVOKED}


@needs_allauth
def test_an_allauth_session_evicted_by_the_cap_is_gone_at_allauth(user, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1)
    phone = logged_in(user)
    laptop = logged_in(user, UA_MAC_CHROME)
    assert phone.session().status_code == 410
    phone.session_token = None
    assert phone.refresh_tokens().status_code == 400
    assert laptop.session().status_code == 200


@pytest.mark.parametrize("door", ["python_api", "login_view", "allauth"])
def test_refuse_holds_at_every_login_door(api, user, jwt_settings, door):
    if door == "allauth" and Headless is None:
        pytest.skip("django-allauth is not installed")
    jwt_settings(MAX_SESSIONS_PER_USER=1, MAX_SESSIONS_POLICY="refuse")
    jwt_api.issue_tokens(user)
    if door == "python_api":
        with pytest.raises(MaxSessionsReached):
            jwt_api.issue_tokens(user)
    elif door == "login_view":
        assert_error(api.login(user.username), 403, "max_sessions")
    else:
        resp = Headless().login(user.username)
        assert resp.status_code == 403 and errors_of(resp) == ["max_sessions"]
    assert Session.objects.filter(user=user).count() == 1


def test_at_the_cap_a_refresh_and_a_reauthentication_still_work_and_open_nothing(
        api, user, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1, MAX_SESSIONS_POLICY="refuse")
    tokens = api.login_ok(user.username)
    fresh = api.refresh_ok(tokens["refresh"])
    resp = api.post(url("reauthenticate"), {"password": PASSWORD}, **bearer(fresh["access"]))
    assert resp.status_code == 200, resp.content
    assert Session.objects.filter(user=user).count() == 1


def test_refuse_counts_no_ended_session(api, user, jwt_settings, clock):
    jwt_settings(MAX_SESSIONS_PER_USER=2, MAX_SESSIONS_POLICY="refuse")
    api.logout(api.login_ok(user.username)["access"])
    api.login_ok(user.username)
    clock.tick(timedelta(days=31))  # that one expires
    api.login_ok(user.username)
    api.login_ok(user.username)
    assert_error(api.login(user.username), 403, "max_sessions")


def test_another_users_sessions_never_count_against_my_cap(api, user, make_user, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1, MAX_SESSIONS_POLICY="refuse")
    other = make_user()
    api.login_ok(other.username)
    mine = api.login_ok(user.username)
    assert drf_code(mine["access"]) == "ok"


def test_evict_never_ends_another_users_session(api, user, make_user, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1)
    other = api.login_ok(make_user().username)
    api.login_ok(user.username)
    api.login_ok(user.username)
    assert drf_code(other["access"]) == "ok"


def test_a_login_that_fails_after_evicting_ends_no_session(api, user, jwt_settings,
                                                           monkeypatch):
    from jwt_sessions.exceptions import ServiceUnavailable
    from jwt_sessions.redis import mirror

    jwt_settings(MAX_SESSIONS_PER_USER=1, REDIS_FAILURE_POLICY="deny")
    kept = api.login_ok(user.username)
    real = mirror.cache_session

    def refuses(session):
        raise ServiceUnavailable()

    monkeypatch.setattr(mirror, "cache_session", refuses)
    assert api.login(user.username).status_code == 503
    monkeypatch.setattr(mirror, "cache_session", real)
    assert Session.objects.get(pk=kept["session_id"]).revoked_at is None
    fresh = api.refresh_ok(kept["refresh"])
    assert drf_code(fresh["access"]) == "ok"
    assert drf_code(kept["access"]) in ("ok", "token_invalid")


def _http_logins(username: str, count: int) -> list[int]:
    """`count` logins through the login view at once, each thread with its own client
    and database connection; their statuses."""
    return all_at_once(count, lambda: Api().login(username).status_code)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("policy", ["refuse", "evict"])
def test_concurrent_http_logins_never_open_more_than_the_cap(user, jwt_settings, settings,
                                                             policy):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "jwt_sessions_login_user": "1000/min", "jwt_sessions_login": "1000/min"}}
    cap, count = 2, 8
    jwt_settings(MAX_SESSIONS_PER_USER=cap, MAX_SESSIONS_POLICY=policy)
    statuses = _http_logins(user.username, count)
    assert Session.objects.active().for_user(user).count() == cap
    if policy == "refuse":
        assert sorted(statuses) == [200] * cap + [403] * (count - cap)
    else:
        assert statuses == [200] * count


# ------------------------------------------------------------------ admin: who may look
def _staff(make_user, *codenames: str, **fields):
    member = make_user(**{"is_staff": True, **fields})
    for codename in codenames:
        member.user_permissions.add(Permission.objects.get(
            codename=codename, content_type__app_label="jwt_sessions"))
    return member


@pytest.mark.parametrize(("who", "status"), [
    ("viewer_not_staff", 302), ("staff_revoker_without_view", 403),
    ("inactive_superuser", 302), ("viewer", 200)])
def test_only_active_staff_who_may_view_sessions_see_the_dashboard(client, make_user, who,
                                                                    status):
    member = {
        "viewer_not_staff": lambda: _staff(make_user, "view_session", is_staff=False),
        "staff_revoker_without_view": lambda: _staff(make_user, "revoke_session"),
        "inactive_superuser": lambda: make_user(is_staff=True, is_superuser=True,
                                                is_active=False),
        "viewer": lambda: _staff(make_user, "view_session"),
    }[who]()
    client.force_login(member)
    resp = client.get(reverse(DASHBOARD))
    assert resp.status_code == status
    if status == 302:
        assert "/login/" in resp["Location"]


def test_a_viewer_cannot_revoke_through_the_per_user_page(client, make_user, api, user):
    tokens = api.login_ok(user.username)
    client.force_login(_staff(make_user, "view_session"))
    resp = client.post(reverse("admin:jwt_sessions_session_revoke_user", args=[user.pk]),
                       {"post": "yes"})
    assert resp.status_code == 403
    assert drf_code(tokens["access"]) == "ok"


def test_a_viewer_cannot_revoke_through_the_list_action(client, make_user, api, user):
    tokens = api.login_ok(user.username)
    client.force_login(_staff(make_user, "view_session"))
    client.post(reverse(CHANGELIST), {"action": "revoke_sessions", "post": "yes",
                                      "_selected_action": [tokens["session_id"]]})
    assert drf_code(tokens["access"]) == "ok"


# ------------------------------------------------------------------ admin: CSRF
@pytest.fixture
def csrf_admin(admin_user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    return client


def test_the_revoke_action_needs_a_csrf_token(csrf_admin, api, user):
    tokens = api.login_ok(user.username)
    resp = csrf_admin.post(reverse(CHANGELIST), {"action": "revoke_sessions", "post": "yes",
                                                 "_selected_action": [tokens["session_id"]]})
    assert resp.status_code == 403
    assert drf_code(tokens["access"]) == "ok"


def test_the_revoke_user_page_needs_a_csrf_token(csrf_admin, api, user):
    tokens = api.login_ok(user.username)
    resp = csrf_admin.post(reverse("admin:jwt_sessions_session_revoke_user", args=[user.pk]),
                           {"post": "yes"})
    assert resp.status_code == 403
    assert drf_code(tokens["access"]) == "ok"


def test_a_get_to_the_revoke_user_page_only_asks(admin_client, api, user):
    tokens = api.login_ok(user.username)
    page = reverse("admin:jwt_sessions_session_revoke_user", args=[user.pk])
    assert admin_client.get(page + "?post=yes").status_code == 200
    assert drf_code(tokens["access"]) == "ok"


# ------------------------------------------------------------------ admin: injected markup
def test_a_hostile_user_agent_and_username_are_escaped_in_the_admin(admin_client, api,
                                                                    make_user):
    evil = make_user(XSS)
    tokens = api.login_ok(evil.username, ua=f"{XSS} Chrome/1")
    for page in (reverse(CHANGELIST),
                 reverse("admin:jwt_sessions_session_change", args=[tokens["session_id"]]),
                 reverse("admin:jwt_sessions_session_revoke_user", args=[evil.pk])):
        html = admin_client.get(page).content.decode()
        assert XSS not in html, page
        assert "&lt;img" in html, page


def test_a_hostile_place_name_is_escaped_in_the_admin_list(admin_client, api, user, geoip):
    api.login_ok(user.username, ip=ATTACKER_IP)
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert XSS not in html and "Sydney" in html


def test_a_hostile_revoking_admins_name_is_escaped_in_the_status(client, make_user, api, user):
    evil_admin = make_user(XSS, is_staff=True, is_superuser=True)
    tokens = api.login_ok(user.username)
    jwt_api.revoke_session(tokens["session_id"])
    Session.objects.filter(pk=tokens["session_id"]).update(revoked_by=evil_admin,
                                                          revoked_reason=RevokeReason.ADMIN)
    client.force_login(evil_admin)
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert XSS not in html and "&lt;img" in html


def test_a_hostile_reason_in_the_table_is_escaped_on_the_dashboard(admin_client, api, user):
    tokens = api.login_ok(user.username)
    jwt_api.revoke_session(tokens["session_id"])
    Session.objects.filter(pk=tokens["session_id"]).update(revoked_reason=XSS[:32])
    html = admin_client.get(reverse(DASHBOARD)).content.decode()
    assert XSS[:32] not in html


# ------------------------------------------------------------------ admin: big data
def test_the_session_list_costs_the_same_queries_for_5_or_50_revoked_rows(
        admin_client, admin_user, make_user, queries):
    def rows(count: int) -> None:
        for _ in range(count):
            pair = jwt_api.issue_tokens(make_user())
            Session.objects.filter(pk=pair["session_id"]).update(
                revoked_by=admin_user, revoked_reason=RevokeReason.ADMIN, location="Berlin")

    rows(5)
    admin_client.get(reverse(CHANGELIST))
    with queries() as few:
        admin_client.get(reverse(CHANGELIST))
    rows(45)
    with queries() as many:
        admin_client.get(reverse(CHANGELIST))
    assert len(many) == len(few), "\n".join(q["sql"] for q in many.captured_queries)


def test_the_users_admin_page_costs_the_same_queries_for_3_or_30_sessions(admin_client, user,
                                                                          queries):
    for _ in range(3):
        jwt_api.issue_tokens(user)
    page = reverse(f"admin:{user._meta.app_label}_{user._meta.model_name}_change",
                   args=[user.pk])
    admin_client.get(page)
    with queries() as few:
        admin_client.get(page)
    for _ in range(27):
        jwt_api.issue_tokens(user)
    with queries() as many:
        assert admin_client.get(page).status_code == 200
    assert len(many) == len(few), "\n".join(q["sql"] for q in many.captured_queries)



def test_the_revoke_confirmation_costs_the_same_queries_for_5_or_50_sessions(
        admin_client, make_user, queries):
    def confirm(ids: list[str]):
        return admin_client.post(reverse(CHANGELIST), {"action": "revoke_sessions",
                                                       "_selected_action": ids})

    ids = [jwt_api.issue_tokens(make_user())["session_id"] for _ in range(50)]
    confirm(ids[:5])
    with queries() as few:
        assert confirm(ids[:5]).status_code == 200
    with queries() as many:
        assert confirm(ids).status_code == 200
    assert len(many) == len(few), "\n".join(q["sql"] for q in many.captured_queries)
    assert Session.objects.active().count() == 50  # only asked, nothing revoked
