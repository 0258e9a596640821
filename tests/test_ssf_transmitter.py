"""The transmitter: metadata, streams, SETs for every revocation, poll and verification.
SETs are checked with joserfc against what the JWKS endpoint publishes."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission
from django.core import checks
from django.test import Client

from jwt_sessions import api as jwt_api
from jwt_sessions.models import Session
from jwt_sessions.shared_signals.models import SsfOutboxEvent, SsfStream
from tests.conftest import bearer, url
from tests.ssf_helpers import (
    CREDENTIAL_CHANGE,
    ISSUER,
    POLL,
    PUSH,
    SESSION_REVOKED,
    send_json,
    verify_with_jwks,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ssf_on")]


def _jwks() -> dict:
    return Client().get(url("jwks")).json()


def _sets(**filters) -> list[tuple[dict, dict]]:
    rows = SsfOutboxEvent.objects.filter(**filters).order_by("pk")
    return [verify_with_jwks(row.token, _jwks()) for row in rows]


def test_permission_is_a_permission_row():
    assert Permission.objects.filter(content_type__app_label="jwt_sessions",
                                     codename="manage_ssf_stream").exists()


def test_configuration_names_the_endpoints():
    body = Client().get(url("ssf_configuration")).json()
    assert body["issuer"] == ISSUER
    assert set(body["delivery_methods_supported"]) == {PUSH, POLL}
    assert body["jwks_uri"].endswith(url("jwks"))
    for name in ("configuration_endpoint", "status_endpoint", "verification_endpoint"):
        assert body[name].startswith("http://testserver/")


def test_configuration_is_absent_while_off(settings):
    settings.JWT_SESSIONS = {"BCRYPT_ROUNDS": 4}
    assert Client().get(url("ssf_configuration")).status_code == 404


def test_stream_endpoints_need_a_token_and_the_permission(api, user):
    body = {"delivery": {"method": POLL}}
    assert send_json(Client().post, url("ssf_stream"), body).status_code == 401
    access = api.login_ok(user.username)["access"]
    resp = send_json(Client().post, url("ssf_stream"), body, **bearer(access))
    assert resp.status_code == 403
    assert resp.json()["code"] == "permission_denied"


def test_stream_lifecycle(create_stream, manager_token, push_receiver):
    stream = create_stream({"method": PUSH, "endpoint_url": push_receiver.url,
                            "authorization_header": "Bearer r3ceiver"},
                           aud="https://rp.example.test/")
    assert stream["aud"] == "https://rp.example.test/" and stream["stream_id"]
    assert stream["iss"] == ISSUER and "authorization_header" not in stream["delivery"]
    assert SESSION_REVOKED in stream["events_delivered"]

    client, auth = Client(), bearer(manager_token)
    read = client.get(url("ssf_stream"), {"stream_id": stream["stream_id"]}, **auth)
    assert read.json() == stream
    patched = send_json(client.patch, url("ssf_stream"),
                    {"stream_id": stream["stream_id"], "description": "ours"}, **auth)
    assert patched.status_code == 200 and patched.json()["description"] == "ours"
    assert client.get(url("ssf_stream"), **auth).json()[0]["description"] == "ours"
    gone = client.delete(f"{url('ssf_stream')}?stream_id={stream['stream_id']}", **auth)
    assert gone.status_code == 204
    assert client.get(url("ssf_stream"), {"stream_id": stream["stream_id"]},
                      **auth).status_code == 404


def test_events_delivered_are_the_requested_ones_supported(create_stream):
    other = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
    stream = create_stream(events_requested=[other, CREDENTIAL_CHANGE])
    assert stream["events_requested"] == [other, CREDENTIAL_CHANGE]
    assert stream["events_delivered"] == [CREDENTIAL_CHANGE]


def test_another_accounts_stream_is_a_404(create_stream, api, make_user):
    stream = create_stream()
    other = make_user()
    other.user_permissions.add(Permission.objects.get(codename="manage_ssf_stream"))
    access = api.login_ok(other.username)["access"]
    resp = Client().get(url("ssf_stream"), {"stream_id": stream["stream_id"]}, **bearer(access))
    assert resp.status_code == 404


@pytest.mark.parametrize("body", [
    {"delivery": {"method": "urn:example:carrier-pigeon"}},
    {"delivery": {"method": PUSH}},
    {"delivery": {"method": PUSH, "endpoint_url": "file:///etc/passwd"}},
    {"delivery": "push"},
    {"delivery": {"method": POLL}, "events_requested": "everything"},
])
def test_bad_stream_bodies_are_400(manager_token, body):
    resp = send_json(Client().post, url("ssf_stream"), body, **bearer(manager_token))
    assert resp.status_code == 400, resp.content


def test_bad_stream_ids_are_4xx(manager_token):
    auth = bearer(manager_token)
    assert Client().get(url("ssf_stream"), {"stream_id": "nope"}, **auth).status_code == 404
    assert Client().post("/auth/ssf/poll/00000000-0000-0000-0000-000000000000/", {},
                         content_type="application/json", **auth).status_code == 404


def test_a_revocation_becomes_a_session_revoked_set(create_stream, api, user):
    stream = create_stream(aud="https://rp.example.test/")
    tokens = api.login_ok(user.username)
    assert api.logout(tokens["access"]).status_code == 204
    [(header, claims)] = _sets(stream_id=stream["stream_id"])
    assert header["typ"] == "secevent+jwt" and header["kid"] == "set-1"
    assert claims["iss"] == ISSUER and claims["aud"] == "https://rp.example.test/"
    assert isinstance(claims["iat"], int) and claims["jti"]
    assert claims["sub_id"] == {
        "format": "complex",
        "user": {"format": "iss_sub", "iss": ISSUER, "sub": str(user.pk)},
        "session": {"format": "opaque", "id": tokens["session_id"]}}
    event = claims["events"][SESSION_REVOKED]
    assert event["initiating_entity"] == "user" and isinstance(event["event_timestamp"], int)


def test_every_revocation_path_is_signalled(create_stream, api, user, make_user, client,
                                            django_user_model):
    create_stream()
    sessions = [api.login_ok(user.username) for _ in range(6)]
    api.logout(sessions[0]["access"])
    api.delete_session(sessions[1]["access"], sessions[1]["session_id"])
    jwt_api.revoke_session(sessions[2]["session_id"])
    from jwt_sessions import services
    services.revoke_sessions(Session.objects.filter(pk=sessions[3]["session_id"]), "admin")
    admin = django_user_model.objects.create_superuser("boss", "b@example.test", "pw")
    client.force_login(admin)
    client.post("/admin/jwt_sessions/session/", {
        "action": "revoke_sessions", "_selected_action": [sessions[4]["session_id"]],
        "post": "yes"})
    user.is_active = False
    user.save()
    named = {claims["sub_id"]["session"]["id"] for _, claims in _sets()
             if SESSION_REVOKED in claims["events"]}
    assert named == {s["session_id"] for s in sessions}


def test_a_password_change_is_a_credential_change(create_stream, api, user):
    create_stream()
    tokens = api.login_ok(user.username)
    user.set_password("another-Pa55word")
    user.save()
    kinds = {next(iter(claims["events"])): claims for _, claims in _sets()}
    assert kinds[CREDENTIAL_CHANGE]["sub_id"] == {"format": "iss_sub", "iss": ISSUER,
                                                  "sub": str(user.pk)}
    assert kinds[SESSION_REVOKED]["sub_id"]["session"]["id"] == tokens["session_id"]


def test_a_rolled_back_revocation_leaves_no_event(create_stream, api, user):
    from django.db import transaction

    create_stream()
    tokens = api.login_ok(user.username)
    with pytest.raises(RuntimeError), transaction.atomic():
        jwt_api.revoke_session(tokens["session_id"])
        raise RuntimeError
    assert not SsfOutboxEvent.objects.exists()


def test_no_stream_no_rows_and_disabled_streams_keep_nothing(create_stream, manager_token,
                                                             api, user):
    api.logout(api.login_ok(user.username)["access"])
    assert not SsfOutboxEvent.objects.exists()
    stream = create_stream()
    resp = send_json(Client().post, url("ssf_status"),
                 {"stream_id": stream["stream_id"], "status": "disabled"}, **bearer(manager_token))
    assert resp.json() == {"stream_id": stream["stream_id"], "status": "disabled"}
    api.logout(api.login_ok(user.username)["access"])
    assert not SsfOutboxEvent.objects.exists()


def test_poll_acknowledges_and_answers_rfc8936_bodies(create_stream, manager_token, api, user):
    stream = create_stream()
    for _ in range(3):
        api.logout(api.login_ok(user.username)["access"])
    endpoint = Client().get(url("ssf_stream"), {"stream_id": stream["stream_id"]},
                            **bearer(manager_token)).json()["delivery"]["endpoint_url"]
    path = endpoint.replace("http://testserver", "")
    auth = bearer(manager_token)
    first = send_json(Client().post, path, {"maxEvents": 2, "returnImmediately": True},
                      **auth).json()
    assert len(first["sets"]) == 2 and first["moreAvailable"] is True
    for jti, token in first["sets"].items():
        assert verify_with_jwks(token, _jwks())[1]["jti"] == jti
    second = send_json(Client().post, path, {"ack": list(first["sets"]), "maxEvents": 10,
                                         "returnImmediately": True}, **auth).json()
    assert len(second["sets"]) == 1 and second["moreAvailable"] is False
    assert not set(second["sets"]) & set(first["sets"])
    third = send_json(Client().post, path, {"ack": list(second["sets"]),
                                        "returnImmediately": True}, **auth).json()
    assert third == {"sets": {}, "moreAvailable": False}


def test_poll_without_return_immediately_waits_then_answers_empty(settings, create_stream,
                                                                   manager_token):
    settings.JWT_SESSIONS["SHARED_SIGNALS"]["POLL_WAIT"] = 0.3
    stream = create_stream()
    path = f"/auth/ssf/poll/{stream['stream_id']}/"
    started = time.monotonic()
    body = send_json(Client().post, path, {}, **bearer(manager_token)).json()
    assert body == {"sets": {}, "moreAvailable": False}
    assert time.monotonic() - started >= 0.25


def test_verification_sends_a_verification_set(create_stream, manager_token):
    stream = create_stream()
    resp = send_json(Client().post, url("ssf_verification"),
                 {"stream_id": stream["stream_id"], "state": "abc"}, **bearer(manager_token))
    assert resp.status_code == 204
    [(_, claims)] = _sets()
    assert claims["events"] == {
        "https://schemas.openid.net/secevent/ssf/event-type/verification": {"state": "abc"}}
    assert claims["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}


def test_hmac_deployment_publishes_the_set_key_and_needs_one(settings):
    keys = _jwks()["keys"]
    assert [key["kid"] for key in keys] == ["set-1"] and keys[0]["alg"] == "ES256"
    settings.JWT_SESSIONS = {"SHARED_SIGNALS": {"ISSUER": ISSUER}}
    ids = {message.id for message in checks.run_checks()}
    assert "jwt_sessions.E305" in ids


@pytest.mark.parametrize("value, error", [
    ("yes", "jwt_sessions.E301"), ({"ISSUER": ISSUER, "COLOUR": 1}, "jwt_sessions.E302"),
    ({}, "jwt_sessions.E303"), ({"ISSUER": ISSUER, "PUSH_TIMEOUT": -1}, "jwt_sessions.E304"),
    ({"ISSUER": ISSUER, "TRANSMITTERS": [{"issuer": "x"}]}, "jwt_sessions.E308"),
    ({"ISSUER": ISSUER, "TRANSMITTERS": [{"issuer": "x", "jwks": "ftp://k",
                                          "audience": "a"}]}, "jwt_sessions.E309"),
])
def test_bad_settings_fail_checks(settings, value, error):
    settings.JWT_SESSIONS = {"ALGORITHM": "ES256", "SHARED_SIGNALS": value}
    assert error in {message.id for message in checks.run_checks()}


def test_an_asymmetric_deployment_signs_sets_with_its_own_key(settings, stream_manager, api,
                                                               user):
    """ES256 access tokens: SETs carry the access tokens' key id and verify with the
    JWKS endpoint's key; no SET key of their own is needed."""
    from tests.ssf_helpers import ec_pem_pair

    private, public = ec_pem_pair()
    settings.JWT_SESSIONS = {"BCRYPT_ROUNDS": 4, "ALGORITHM": "ES256", "SIGNING_KEY": private,
                             "VERIFYING_KEY": public, "KEY_ID": "main-1",
                             "SHARED_SIGNALS": {"ISSUER": ISSUER}}
    assert not [m for m in checks.run_checks() if m.id.startswith("jwt_sessions.E3")]
    SsfStream.objects.create(owner=stream_manager, audience="https://rp.example.test/",
                             delivery_method=POLL, events_requested=[SESSION_REVOKED])
    jwt_api.revoke_session(api.login_ok(user.username)["session_id"])
    assert [key["kid"] for key in _jwks()["keys"]] == ["main-1"]
    [(header, claims)] = _sets()
    assert header["kid"] == "main-1" and claims["iss"] == ISSUER


def test_a_missing_set_key_never_breaks_a_revocation(settings, stream_manager, api, user,
                                                      caplog):
    settings.JWT_SESSIONS = {"BCRYPT_ROUNDS": 4, "SHARED_SIGNALS": {"ISSUER": ISSUER}}
    SsfStream.objects.create(owner=stream_manager, audience="https://rp.example.test/",
                             delivery_method=POLL, events_requested=[SESSION_REVOKED])
    tokens = api.login_ok(user.username)
    assert api.logout(tokens["access"]).status_code == 204
    assert api.whoami(tokens["access"]).status_code == 401
    assert "no usable SET signing key" in caplog.text
