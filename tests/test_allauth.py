"""django-allauth's headless API on jwt_sessions: `jwt_sessions.allauth.TokenStrategy`.

Against the real django-allauth: every login the headless API completes opens a
jwt_sessions session (device, address, amr), its refresh rotates it, its logout ends it,
and its reauthentication renews `auth_time` and `amr`; each seen in the Session row, the
device list and the admin.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

pytest.importorskip("allauth.headless")

from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.urls import reverse  # noqa: E402

from jwt_sessions import api as jwt_api  # noqa: E402
from jwt_sessions.models import RevokeReason, Session  # noqa: E402
from jwt_sessions.tokens import decode_access_token  # noqa: E402
from tests.allauth_client import Headless, activate_totp, totp_code  # noqa: E402
from tests.conftest import PASSWORD, assert_error, bearer, url  # noqa: E402

pytestmark = pytest.mark.django_db


def logged_in(user) -> Headless:
    app = Headless()
    resp = app.login(user.username)
    assert resp.status_code == 200, resp.content
    return app


def only_session(user) -> Session:
    (session,) = Session.objects.filter(user=user)
    return session


# ------------------------------------------------------------------ login
def test_a_password_login_opens_a_session_with_the_device(user):
    app = Headless()
    resp = app.login(user.username)
    assert resp.status_code == 200, resp.content
    meta = resp.json()["meta"]
    assert meta["is_authenticated"] is True
    assert set(meta) >= {"session_token", "access_token", "refresh_token", "expires_in"}
    assert 0 < meta["expires_in"] <= 15 * 60
    session = only_session(user)
    assert (session.device_type, session.os, session.ip_address) == ("mobile", "iOS", app.ip)
    assert session.browser.startswith("Mobile Safari")
    assert session.amr == ["pwd"]
    claims = decode_access_token(app.access)
    assert (claims.session_id, claims.user_id, claims.amr) == (session.pk, str(user.pk),
                                                               ("pwd",))


def test_its_access_token_opens_the_project_api_and_the_device_list(user):
    app = logged_in(user)
    assert app.api("/api/whoami/").json()["id"] == user.pk
    (listed,) = app.api(url("session-list")).json()
    assert listed["id"] == str(only_session(user).pk) and listed["current"] is True
    assert listed["device_type"] == "mobile"


def test_a_failed_login_opens_no_session(user):
    app = Headless()
    assert app.login(user.username, "wrong").status_code == 400
    assert app.access is None and not Session.objects.exists()


def test_login_sends_user_logged_in_once(user):
    from django.contrib.auth.signals import user_logged_in

    seen = []
    user_logged_in.connect(lambda **kw: seen.append(kw["user"]), weak=False, dispatch_uid="t1")
    try:
        logged_in(user)
    finally:
        user_logged_in.disconnect(dispatch_uid="t1")
    assert seen == [user]


def test_signup_opens_a_session(django_user_model):
    app = Headless()
    resp = app.signup("newcomer")
    assert resp.status_code == 200, resp.content
    user = django_user_model.objects.get(username="newcomer")
    session = only_session(user)
    assert session.amr == []  # choosing a password proves nothing yet
    assert app.api("/api/whoami/").json()["id"] == user.pk


def test_a_totp_login_opens_its_session_only_once_the_code_is_checked(user):
    secret = activate_totp(user)
    app = Headless()
    resp = app.login(user.username)
    assert resp.status_code == 401
    flows = {flow["id"]: flow for flow in resp.json()["data"]["flows"]}
    assert flows["mfa_authenticate"]["is_pending"] is True
    assert app.access is None and not Session.objects.exists()
    assert app.mfa_authenticate("000000").status_code == 400
    assert not Session.objects.exists()
    resp = app.mfa_authenticate(totp_code(secret))
    assert resp.status_code == 200, resp.content
    assert only_session(user).amr == ["pwd", "otp", "mfa"]
    assert decode_access_token(app.access).amr == ("pwd", "otp", "mfa")


def test_each_app_login_is_its_own_session(user):
    first, second = logged_in(user), logged_in(user)
    ids = {decode_access_token(app.access).session_id for app in (first, second)}
    assert len(ids) == 2 == Session.objects.active().filter(user=user).count()


# ------------------------------------------------------------------ refresh
def test_refresh_rotates_the_same_session(user):
    app = logged_in(user)
    old_access, old_refresh = app.access, app.refresh
    resp = app.refresh_tokens()
    assert resp.status_code == 200, resp.content
    assert set(resp.json()["data"]) == {"access_token", "refresh_token"}
    assert app.refresh != old_refresh
    assert decode_access_token(app.access).session_id == only_session(user).pk
    assert_error(app.api("/api/whoami/", old_access), 401, "token_invalid")
    assert app.api("/api/whoami/").status_code == 200


@pytest.mark.parametrize("token", ["garbage", "", "x" * 5000])
def test_a_bad_refresh_token_is_allauths_400(user, token):
    app = logged_in(user)
    resp = app.refresh_tokens(token)
    assert resp.status_code == 400, resp.content


def test_a_superseded_refresh_token_ends_the_session(user, jwt_settings):
    jwt_settings(REFRESH_REUSE_GRACE=0)
    app = logged_in(user)
    first = app.refresh
    assert app.refresh_tokens().status_code == 200
    assert app.refresh_tokens(first).status_code == 400
    assert only_session(user).revoked_reason == RevokeReason.REUSE_DETECTED
    assert_error(app.api("/api/whoami/"), 401, "session_revoked")


# ------------------------------------------------------------------ logout and revocation
def test_logout_revokes_the_session(user):
    app = logged_in(user)
    resp = app.logout()
    assert resp.status_code == 401 and resp.json()["meta"]["is_authenticated"] is False
    assert only_session(user).revoked_reason == RevokeReason.LOGOUT
    assert_error(app.api("/api/whoami/"), 401, "session_revoked")
    app.session_token = None  # allauth's clients drop it once signed out
    assert app.refresh_tokens().status_code == 400


def test_logout_ends_only_its_own_session(user):
    phone, laptop = logged_in(user), logged_in(user)
    phone.logout()
    assert laptop.api("/api/whoami/").status_code == 200
    assert laptop.session().status_code == 200
    (left,) = laptop.api(url("session-list")).json()  # the device list: only the laptop
    assert left["id"] == str(decode_access_token(laptop.access).session_id)


def test_revoking_in_the_device_list_ends_the_allauth_session(user):
    phone, laptop = logged_in(user), logged_in(user)
    phone_sid = decode_access_token(phone.access).session_id
    assert laptop.client.delete(f"{url('session-list')}{phone_sid}/",
                                **bearer(laptop.access)).status_code == 204
    assert phone.session().status_code == 410  # allauth: the session is gone, sign in again
    assert laptop.session().status_code == 200


def test_revoking_in_the_admin_ends_the_allauth_session(user, admin_client):
    app = logged_in(user)
    session = only_session(user)
    changelist = reverse("admin:jwt_sessions_session_changelist")
    page = admin_client.get(changelist).content.decode()
    assert user.username in page and session.browser in page and session.ip_address in page
    resp = admin_client.post(changelist, {"action": "revoke_sessions", "post": "yes",
                                          "_selected_action": [str(session.pk)]})
    assert resp.status_code == 302
    assert_error(app.api("/api/whoami/"), 401, "session_revoked")
    assert app.session().status_code == 410


def test_an_expired_session_ends_the_allauth_session(user, clock):
    app = logged_in(user)
    clock.tick(timedelta(days=31))
    assert app.session().status_code == 410


# ------------------------------------------------------------------ step-up
def test_password_reauthentication_renews_auth_time(user, clock):
    app = logged_in(user)
    first = only_session(user).auth_time
    clock.tick(timedelta(minutes=10))
    assert app.api("/api/sensitive/", method="post").status_code == 401
    resp = app.reauthenticate()
    assert resp.status_code == 200, resp.content
    session = only_session(user)
    assert session.auth_time - first == timedelta(minutes=10)
    assert session.amr == ["pwd"]
    assert app.refresh_tokens().status_code == 200
    assert decode_access_token(app.access).auth_time == session.auth_time.replace(microsecond=0)
    assert app.api("/api/sensitive/", method="post").json() == {"done": True}
    (listed,) = app.api(url("session-list")).json()
    assert (listed["amr"], listed["auth_time"]) == (["pwd"], session.auth_time.isoformat()
                                                    .replace("+00:00", "Z"))


def test_the_admin_shows_how_a_session_last_authenticated(user, admin_client):
    secret = activate_totp(user)
    app = Headless()
    app.login(user.username)
    app.mfa_authenticate(totp_code(secret))
    session = only_session(user)
    page = admin_client.get(reverse("admin:jwt_sessions_session_change", args=[session.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Authentication" in html and "pwd" in html and "otp" in html and "mfa" in html


def test_a_wrong_password_renews_nothing(user, clock):
    app = logged_in(user)
    first = only_session(user).auth_time
    clock.tick(timedelta(minutes=10))
    assert app.reauthenticate("wrong").status_code == 400
    assert only_session(user).auth_time == first


def test_totp_reauthentication_records_otp(user, clock):
    secret = activate_totp(user)
    app = Headless()
    app.login(user.username)
    app.mfa_authenticate(totp_code(secret))
    first = only_session(user).auth_time
    clock.tick(timedelta(minutes=10))
    resp = app.mfa_reauthenticate(totp_code(secret))
    assert resp.status_code == 200, resp.content
    session = only_session(user)
    assert (session.amr, session.auth_time - first) == (["otp"], timedelta(minutes=10))
    app.refresh_tokens()
    assert decode_access_token(app.access).amr == ("otp",)


def test_reauthenticating_a_revoked_session_does_not_revive_it(user):
    app = logged_in(user)
    token = app.session_token
    jwt_api.revoke_session(decode_access_token(app.access).session_id)
    app.session_token = token
    assert app.reauthenticate().status_code == 410
    assert only_session(user).revoked_at is not None


def test_a_password_change_that_keeps_the_allauth_session_keeps_the_jwt_session(user):
    app = logged_in(user)
    other = logged_in(user)
    resp = app.call("post", "/account/password/change",
                    {"current_password": PASSWORD, "new_password": "An0ther-pa55word"})
    assert resp.status_code == 200, resp.content
    assert app.api("/api/whoami/").status_code == 200
    assert app.refresh_tokens().status_code == 200
    assert_error(other.api("/api/whoami/"), 401, "session_revoked")


# ------------------------------------------------------------------ allauth's records as amr
@pytest.mark.parametrize(("records", "amr"), [
    ([{"method": "password"}], ["pwd"]),
    ([{"method": "password"}, {"method": "mfa", "type": "totp"}], ["pwd", "otp", "mfa"]),
    ([{"method": "password"}, {"method": "mfa", "type": "webauthn"}], ["pwd", "hwk", "mfa"]),
    ([{"method": "mfa", "type": "webauthn", "passwordless": True}], ["hwk"]),
    ([{"method": "mfa", "type": "recovery_codes"}], ["otp"]),
    ([{"method": "code", "email": "a@example.com"}], []),
    ([{"method": "code", "phone": "+15555550100"}], ["sms"]),
    ([{"method": "socialaccount", "provider": "github"}], []),
    ([{"method": "password"}, {"method": "password", "reauthenticated": True}], ["pwd"]),
    ([{"method": "mfa", "type": "something-new"}, {"nonsense": 1}], []),
])
def test_allauth_records_become_rfc8176_methods(records, amr):
    from jwt_sessions.allauth.methods import amr_of

    assert amr_of(records) == amr


def test_a_passkey_step_up_unlocks_a_passkey_only_view(user):
    """What the browser test does with a real authenticator, with allauth's record of a
    WebAuthn reauthentication made directly."""
    from allauth.account.internal.flows.login import record_authentication
    from django.test import RequestFactory

    app = logged_in(user)
    assert_error(app.api("/api/passkey-only/", method="post"), 401, "reauthentication_required")
    request = RequestFactory().post("/")
    request.session = SessionStore(app.session_token)
    request.user = user
    record_authentication(request, user, "mfa", type="webauthn", reauthenticated=True)
    assert only_session(user).amr == ["hwk"]
    app.refresh_tokens()
    assert app.api("/api/passkey-only/", method="post").json() == {"done": True}


# ------------------------------------------------------------------ the access token on allauth
def bearer_only(app: Headless) -> Headless:
    """The same app, sending its access token instead of the session token."""
    app.session_token = None
    return app


def test_the_access_token_stands_for_the_session_token(user):
    app = bearer_only(logged_in(user))
    resp = app.session(HTTP_AUTHORIZATION=f"Bearer {app.access}")
    assert resp.status_code == 200 and resp.json()["data"]["user"]["id"] == user.pk
    assert "session_token" not in resp.json().get("meta", {})  # never handed out this way


def test_logout_by_access_token_revokes_the_session(user):
    app = bearer_only(logged_in(user))
    resp = app.call("delete", "/auth/session", HTTP_AUTHORIZATION=f"Bearer {app.access}")
    assert resp.status_code == 401
    assert only_session(user).revoked_reason == RevokeReason.LOGOUT


def test_reauthentication_by_access_token_renews_the_session(user, clock):
    app = bearer_only(logged_in(user))
    first = only_session(user).auth_time
    clock.tick(timedelta(minutes=10))
    resp = app.call("post", "/auth/reauthenticate", {"password": PASSWORD},
                    HTTP_AUTHORIZATION=f"Bearer {app.access}")
    assert resp.status_code == 200, resp.content
    assert only_session(user).auth_time - first == timedelta(minutes=10)


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a b", "Basic xyz", "Bearer "])
def test_a_bad_authorization_header_is_simply_signed_out(user, header):
    app = bearer_only(logged_in(user))
    resp = app.session(HTTP_AUTHORIZATION=header)
    assert resp.status_code == 401 and resp.json()["meta"]["is_authenticated"] is False


def test_a_revoked_or_superseded_access_token_stands_for_nothing(user):
    app = logged_in(user)
    old = app.access
    app.refresh_tokens()
    bearer_only(app)
    assert app.session(HTTP_AUTHORIZATION=f"Bearer {old}").status_code == 401
    assert app.session(HTTP_AUTHORIZATION=f"Bearer {app.access}").status_code == 200
    jwt_api.revoke_session(decode_access_token(app.access).session_id)
    assert app.session(HTTP_AUTHORIZATION=f"Bearer {app.access}").status_code == 401


def test_the_cache_can_only_point_at_the_session_it_names(user, make_user):
    """Someone who can write the cache points alice's access token at bob's allauth
    session: it finds nothing (the Django session's own link must name the same
    jwt_sessions session, of the same user)."""
    from django.core.cache import cache

    alice, bob = logged_in(user), logged_in(make_user())
    alice_sid = decode_access_token(alice.access).session_id
    cache.set(f"jwts:allauth:{alice_sid}", bob.session_token)
    bearer_only(alice)
    resp = alice.session(HTTP_AUTHORIZATION=f"Bearer {alice.access}")
    assert resp.status_code == 401 and resp.json()["meta"]["is_authenticated"] is False


def test_without_the_cache_entry_the_session_token_still_works(user):
    from django.core.cache import cache

    app = logged_in(user)
    cache.delete(f"jwts:allauth:{decode_access_token(app.access).session_id}")
    assert app.session().status_code == 200
    token = app.session_token
    bearer_only(app)
    assert app.session(HTTP_AUTHORIZATION=f"Bearer {app.access}").status_code == 401
    app.session_token = token
    assert app.logout().status_code == 401
    assert only_session(user).revoked_reason == RevokeReason.LOGOUT


# ------------------------------------------------------------------ refresh: throttle, outage
def test_allauths_refresh_is_throttled_like_jwt_sessions_refresh(user, settings, clock):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"jwt_sessions_refresh": "2/min"}}
    app = logged_in(user)
    assert app.refresh_tokens("forged").status_code == 400
    assert app.refresh_tokens().status_code == 200
    resp = app.refresh_tokens()
    assert resp.status_code == 429 and int(resp["Retry-After"]) >= 1
    assert resp.json()["status"] == 429  # allauth's envelope


def test_a_store_outage_under_deny_is_a_503_not_a_500(user, jwt_settings, monkeypatch):
    from jwt_sessions.redis import mirror

    app = logged_in(user)
    jwt_settings(REDIS_FAILURE_POLICY="deny")

    def down(*args, **kwargs):
        raise mirror.StoreUnavailable("Redis is down")

    monkeypatch.setattr(mirror, "add_to_counter", down)
    resp = app.refresh_tokens()
    assert resp.status_code == 503
    assert resp.json()["errors"][0]["code"] == "service_unavailable"


# ------------------------------------------------------------ a login whose session cannot open
def test_credentials_changing_during_the_login_leave_no_login_behind(user, django_user_model):
    """The user is deactivated between allauth's password check and the session row
    (here: by a `user_logged_in` receiver, in the middle of allauth's login): no session,
    an error with our code, and allauth's own login undone (no session token handed out)."""
    from django.contrib.auth.signals import user_logged_in

    def deactivate(sender, user, **kwargs):
        django_user_model.objects.filter(pk=user.pk).update(is_active=False)

    user_logged_in.connect(deactivate, dispatch_uid="deactivate-mid-login")
    try:
        app = Headless()
        resp = app.login(user.username)
    finally:
        user_logged_in.disconnect(dispatch_uid="deactivate-mid-login")
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["code"] == "invalid_credentials"
    assert not Session.objects.exists()
    assert app.access is None and app.session_token is None


def test_a_store_refusing_at_login_is_a_503_and_no_login(user, monkeypatch):
    from jwt_sessions.exceptions import ServiceUnavailable
    from jwt_sessions.redis import mirror

    def refuses(session):
        raise ServiceUnavailable()

    monkeypatch.setattr(mirror, "cache_session", refuses)
    app = Headless()
    resp = app.login(user.username)
    assert resp.status_code == 503
    assert resp.json()["errors"][0]["code"] == "service_unavailable"
    assert not Session.objects.exists()


def failing_hook(user, session_id):
    return {"amr": ["hwk"]}  # a registered claim no hook may set


def signed_in_django_sessions() -> list:
    from django.contrib.sessions.models import Session as DjangoSession

    return [s for s in DjangoSession.objects.all() if "_auth_user_id" in s.get_decoded()]


def test_a_failing_claims_hook_at_the_second_factor_is_a_json_500_and_no_login(user,
                                                                              jwt_settings):
    secret = activate_totp(user)
    app = Headless()
    assert app.login(user.username).status_code == 401
    jwt_settings(CLAIMS_HOOK=failing_hook)
    app.client.raise_request_exception = False
    resp = app.mfa_authenticate(totp_code(secret))
    assert resp.status_code == 500
    assert resp.json()["errors"][0]["code"] == "claims_hook_failed"
    assert not Session.objects.exists() and signed_in_django_sessions() == []


def test_a_failing_claims_hook_at_allauths_refresh_is_a_json_500_that_rotates_nothing(
        user, jwt_settings):
    app = logged_in(user)
    jwt_settings(CLAIMS_HOOK=failing_hook)
    app.client.raise_request_exception = False
    resp = app.refresh_tokens()
    assert resp.status_code == 500
    assert resp.json()["errors"][0]["code"] == "claims_hook_failed"
    assert only_session(user).rotated_at is None
    jwt_settings(CLAIMS_HOOK=None)
    assert app.refresh_tokens().status_code == 200


# ------------------------------------------------------------------ a malformed session token
@pytest.mark.parametrize("token", ["\x00", "a\x00b", "\x1f", "\x7f", "\t", "\x85"])
@pytest.mark.parametrize("method, path", [("get", "/auth/session"),
                                          ("delete", "/auth/session"),
                                          ("post", "/auth/reauthenticate")])
def test_a_control_character_in_the_session_token_names_no_session(user, token, method,
                                                                   path):
    app = logged_in(user)
    intruder = Headless()
    intruder.client.raise_request_exception = False
    body = {"password": PASSWORD} if method == "post" else None
    resp = intruder.call(method, path, body, HTTP_X_SESSION_TOKEN=app.session_token + token)
    assert resp.status_code in (401, 410), resp.content
    assert app.session().status_code == 200


def test_a_login_by_emailed_code_opens_a_session(make_user, mailoutbox):
    import re

    user = make_user(email="coder@example.com")
    app = Headless()
    resp = app.call("post", "/auth/code/request", {"email": "coder@example.com"})
    assert resp.status_code == 401, resp.content  # pending: the code is on its way
    (mail,) = mailoutbox
    code = re.search(r"^([A-Z0-9]{4}-[A-Z0-9]{4})$", mail.body, re.MULTILINE).group(1)
    assert not Session.objects.exists()
    resp = app.call("post", "/auth/code/confirm", {"code": code})
    assert resp.status_code == 200, resp.content
    assert only_session(user).amr == []  # an emailed code has no RFC 8176 name
    assert app.api("/api/whoami/").json()["id"] == user.pk


# ------------------------------------------------------------------ DPoP
def test_a_headless_login_with_a_dpop_proof_binds_its_session(user):
    """The access token of a bound allauth session stands for its session only with a
    proof by the key; as Bearer (a copied token) it stands for nothing."""
    from tests.dpop_keys import ProofKey

    key, app = ProofKey(), Headless()
    login_url = "http://testserver/_allauth/app/v1/auth/login"
    resp = app.call("post", "/auth/login", {"username": user.username, "password": PASSWORD},
                    HTTP_DPOP=key.proof("POST", login_url))
    assert resp.status_code == 200, resp.content
    assert only_session(user).dpop_jkt == key.jkt
    app = bearer_only(app)
    assert app.session(HTTP_AUTHORIZATION=f"Bearer {app.access}").status_code == 401
    session_url = "http://testserver/_allauth/app/v1/auth/session"
    resp = app.session(HTTP_AUTHORIZATION=f"DPoP {app.access}",
                       HTTP_DPOP=key.proof("GET", session_url, token=app.access))
    assert resp.status_code == 200 and resp.json()["data"]["user"]["id"] == user.pk
    refresh_url = "http://testserver/_allauth/app/v1/tokens/refresh"
    refused = app.call("post", "/tokens/refresh", {"refresh_token": app.refresh})
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["code"] == "invalid_dpop_proof"
    resp = app.call("post", "/tokens/refresh", {"refresh_token": app.refresh},
                    HTTP_DPOP=key.proof("POST", refresh_url))
    assert resp.status_code == 200, resp.content
