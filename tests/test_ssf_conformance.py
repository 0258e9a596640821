"""The Shared Signals wire as the texts write it (SSF 1.0, CAEP 1.0, RFC 8417, RFC 8935,
RFC 8936, RFC 9493, Global Token Revocation): what a receiver or a caller that read only
those texts sends, and what it must get back. docs/shared-signals.md lists each point."""
from __future__ import annotations

import pytest
from django.contrib.auth.hashers import make_password
from django.test import Client
from django.urls import include, path

from jwt_sessions.shared_signals.models import SsfOutboxEvent
from jwt_sessions.shared_signals.urls import discovery_urlpatterns
from tests.conftest import bearer, url
from tests.ssf_helpers import (
    ACCOUNT_DISABLED,
    CREDENTIAL_CHANGE,
    ISSUER,
    PEER_AUDIENCE,
    POLL,
    SESSION_REVOKED,
    peer_set,
    send_json,
    verify_with_jwks,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ssf_on")]
UNKNOWN_STREAM = "00000000-0000-0000-0000-000000000000"
TENANT_ISSUER = "https://auth.example.test/tenant-1/"

# A project's root urls.py, as docs/shared-signals.md writes it.
urlpatterns = [path("auth/", include("jwt_sessions.urls")), *discovery_urlpatterns(ISSUER),
               *discovery_urlpatterns(TENANT_ISSUER)]


def _receive(token: str):
    return Client().post(url("ssf_receive"), data=token, content_type="application/secevent+jwt",
                         HTTP_ACCEPT="application/json")


def _sets() -> list[tuple[dict, dict]]:
    jwks = Client().get(url("jwks")).json()
    return [verify_with_jwks(row.token, jwks) for row in SsfOutboxEvent.objects.order_by("pk")]


# ------------------------------------------------------------------ transmitter metadata
def test_configuration_is_json_and_names_what_ssf_defines():
    resp = Client().get(url("ssf_configuration"))
    assert resp.status_code == 200 and resp["Content-Type"] == "application/json"
    body = resp.json()
    assert body["spec_version"] == "1_0" and body["issuer"] == ISSUER
    assert body["delivery_methods_supported"] == ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"]
    assert body["default_subjects"] in ("ALL", "NONE")
    assert all(scheme["spec_urn"] for scheme in body["authorization_schemes"])
    # Claims with zero elements are omitted; no subject endpoints are offered.
    assert all(value not in ([], {}, "", None) for value in body.values())
    assert "add_subject_endpoint" not in body and "remove_subject_endpoint" not in body


@pytest.mark.urls(__name__)
def test_the_metadata_is_where_a_receiver_derives_it_from_the_issuer():
    """SSF: "/.well-known/ssf-configuration" between the issuer's host and its path."""
    assert Client().get("/.well-known/ssf-configuration").json()["issuer"] == ISSUER
    assert Client().get("/.well-known/ssf-configuration/tenant-1").status_code == 200


# ------------------------------------------------------------------ stream configuration
def test_a_create_without_delivery_is_a_poll_stream(manager_token):
    """SSF: "If the request does not contain the delivery property, then the Transmitter
    MUST assume that the method is urn:ietf:rfc:8936 (poll)"."""
    resp = send_json(Client().post, url("ssf_stream"), {"description": "no delivery"},
                     **bearer(manager_token))
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["delivery"]["method"] == POLL and body["delivery"]["endpoint_url"]
    for member in ("stream_id", "iss", "aud", "events_supported", "events_delivered"):
        assert body[member]


@pytest.mark.parametrize("verb", ["patch", "put"])
@pytest.mark.parametrize("member, value", [
    ("aud", "https://someone-else.example/"),  # "This property cannot be updated."
    ("iss", "https://someone-else.example/"),
    ("events_supported", ["urn:example:other"]),
    ("events_delivered", ["urn:example:other"]),
])
def test_transmitter_supplied_members_must_match(create_stream, manager_token, verb, member,
                                                 value):
    stream = create_stream(aud="https://rp.example.test/")
    body = {"stream_id": stream["stream_id"], "delivery": {"method": POLL}, member: value}
    resp = send_json(getattr(Client(), verb), url("ssf_stream"), body, **bearer(manager_token))
    assert resp.status_code == 400, resp.content
    read = Client().get(url("ssf_stream"), {"stream_id": stream["stream_id"]},
                        **bearer(manager_token)).json()
    assert read["aud"] == "https://rp.example.test/"


@pytest.mark.parametrize("verb", ["patch", "put"])
def test_transmitter_supplied_members_that_match_are_accepted(create_stream, manager_token,
                                                              verb):
    """A receiver may send back what it read, changed here and there."""
    stream = create_stream(aud="https://rp.example.test/")
    body = {**stream, "description": "edited"}
    resp = send_json(getattr(Client(), verb), url("ssf_stream"), body, **bearer(manager_token))
    assert resp.status_code == 200, resp.content
    assert resp.json() == {**stream, "description": "edited"}


def test_a_replace_without_delivery_is_a_poll_stream(create_stream, manager_token,
                                                     push_receiver):
    """PUT: missing Receiver-Supplied members are deleted, the delivery back to poll."""
    stream = create_stream({"method": "urn:ietf:rfc:8935", "endpoint_url": push_receiver.url})
    resp = send_json(Client().put, url("ssf_stream"), {"stream_id": stream["stream_id"]},
                     **bearer(manager_token))
    assert resp.status_code == 200, resp.content
    assert resp.json()["delivery"]["method"] == POLL


@pytest.mark.parametrize("stream_id", ["nope", UNKNOWN_STREAM])
def test_no_such_stream_is_a_404_everywhere(manager_token, stream_id):
    """"404 if there is no Event Stream with the given stream_id": a malformed id names none."""
    client, auth = Client(), bearer(manager_token)
    assert client.get(url("ssf_stream"), {"stream_id": stream_id}, **auth).status_code == 404
    assert client.delete(f"{url('ssf_stream')}?stream_id={stream_id}",
                         **auth).status_code == 404
    assert send_json(client.patch, url("ssf_stream"), {"stream_id": stream_id},
                     **auth).status_code == 404
    assert client.get(url("ssf_status"), {"stream_id": stream_id}, **auth).status_code == 404
    assert send_json(client.post, url("ssf_status"), {"stream_id": stream_id,
                                                      "status": "paused"},
                     **auth).status_code == 404
    assert send_json(client.post, url("ssf_verification"), {"stream_id": stream_id},
                     **auth).status_code == 404


def test_management_answers_are_not_cached(create_stream, manager_token):
    stream = create_stream()
    auth = bearer(manager_token)
    for resp in (Client().get(url("ssf_stream"), {"stream_id": stream["stream_id"]}, **auth),
                 Client().get(url("ssf_status"), {"stream_id": stream["stream_id"]}, **auth)):
        assert "no-store" in resp["Cache-Control"]


def test_status_answers_its_three_values(create_stream, manager_token):
    stream, auth = create_stream(), bearer(manager_token)
    for status in ("paused", "disabled", "enabled"):
        resp = send_json(Client().post, url("ssf_status"),
                         {"stream_id": stream["stream_id"], "status": status}, **auth)
        assert resp.status_code == 200
        assert resp.json() == {"stream_id": stream["stream_id"], "status": status}
    assert send_json(Client().post, url("ssf_status"),
                     {"stream_id": stream["stream_id"], "status": "on"},
                     **auth).status_code == 400


# ------------------------------------------------------------------ the SETs
def test_sets_follow_the_ssf_profile(create_stream, api, user):
    create_stream()
    create_stream()
    api.logout(api.login_ok(user.username)["access"])
    (header_a, set_a), (_, set_b) = _sets()
    assert header_a["typ"] == "secevent+jwt" and header_a["kid"]
    for claims in (set_a, set_b):
        assert isinstance(claims["iat"], int) and claims["jti"] and claims["iss"] == ISSUER
        assert "sub" not in claims and "exp" not in claims  # SSF: never in a SET
        assert claims["sub_id"]["format"] == "complex"
        [payload] = claims["events"].values()
        assert isinstance(payload["event_timestamp"], int)
        assert payload["initiating_entity"] in ("admin", "user", "policy", "system")
    # "txn": one value for one underlying event, whichever stream carries it.
    assert set_a["txn"] and set_a["txn"] == set_b["txn"] and set_a["jti"] != set_b["jti"]


def test_two_revocations_have_two_txns(create_stream, api, user):
    create_stream()
    api.logout(api.login_ok(user.username)["access"])
    api.logout(api.login_ok(user.username)["access"])
    first, second = (claims["txn"] for _, claims in _sets())
    assert first != second


def test_credential_change_carries_its_required_claims(create_stream, user):
    create_stream(events_requested=[CREDENTIAL_CHANGE])
    user.set_password("another-Pa55word")
    user.save()
    [(_, claims)] = _sets()
    payload = claims["events"][CREDENTIAL_CHANGE]
    assert payload["credential_type"] == "password" and payload["change_type"] == "update"
    assert isinstance(payload["event_timestamp"], int) and claims["txn"]


def test_a_password_changed_behind_the_orms_back_is_a_credential_change(create_stream, api,
                                                                        user):
    """`QuerySet.update` sends no signal: the refresh that refuses the session for the
    new password is where the project notices, and says so once."""
    create_stream()
    first, second = api.login_ok(user.username), api.login_ok(user.username)
    type(user).objects.filter(pk=user.pk).update(password=make_password("An0ther-secret"))
    for tokens in (first, second):
        assert api.refresh(tokens["refresh"]).status_code == 401
    kinds = [next(iter(claims["events"])) for _, claims in _sets()]
    assert kinds.count(CREDENTIAL_CHANGE) == 1
    assert kinds.count(SESSION_REVOKED) == 2


# ------------------------------------------------------------------ receiving (RFC 8935)
def test_a_refusal_is_a_json_error_body():
    resp = _receive(peer_set({SESSION_REVOKED: {}}, aud="https://not-us.example/"))
    assert resp.status_code == 400 and resp["Content-Type"] == "application/json"
    assert resp.json()["err"] == "invalid_audience" and resp.json()["description"]


def test_an_accepted_set_is_a_202_with_no_body(make_user):
    subject = {"format": "email", "email": make_user(email="ada@example.test").email}
    resp = _receive(peer_set({SESSION_REVOKED: {}}, subject, aud=PEER_AUDIENCE))
    assert resp.status_code == 202 and resp.content == b"", resp.content


# ------------------------------------------------------------------ Global Token Revocation
def test_global_token_revocation_takes_json_only(manager_token, user):
    resp = Client().post(url("global_token_revocation"),
                         data={"sub_id": "opaque"}, **bearer(manager_token))
    assert resp.status_code == 415


def test_a_well_formed_subject_we_do_not_map_names_nobody(api, user):
    """SSF's own example: a RISC account-disabled about a phone number. A valid SET
    (202) that ends nothing here, not a malformed one (400: the transmitter gives up)."""
    tokens = api.login_ok(user.username)
    subject = {"format": "phone_number", "phone_number": "+1 206 555 0123"}
    resp = _receive(peer_set({ACCOUNT_DISABLED: {"reason": "hijacking"}}, subject))
    assert resp.status_code == 202, resp.content
    assert api.whoami(tokens["access"]).status_code == 200


def test_sub_id_is_the_subject_even_beside_an_event_subject(api, make_user):
    """SSF: the top-level `sub_id` names the primary subject; a `subject` inside the
    event is the older CAEP/RISC place, read only when `sub_id` is absent."""
    named, other = make_user(), make_user()
    named_tokens, other_tokens = api.login_ok(named.username), api.login_ok(other.username)
    token = peer_set({SESSION_REVOKED: {"subject": {"format": "opaque", "id": str(other.pk)}}},
                     {"format": "opaque", "id": str(named.pk)})
    assert _receive(token).status_code == 202
    assert api.whoami(named_tokens["access"]).status_code == 401
    assert api.whoami(other_tokens["access"]).status_code == 200


def test_an_optional_member_left_out_is_absent(create_stream):
    assert "description" not in create_stream()
