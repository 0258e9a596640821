"""Global Token Revocation: a caller holding manage_ssf_stream ends every session of a
user named by a subject identifier."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from jwt_sessions.models import Session
from tests.conftest import bearer, url
from tests.ssf_helpers import ISSUER

pytestmark = [pytest.mark.django_db]


def revoke(body, access: str | None = None):
    extra = bearer(access) if access else {}
    return Client().post(url("global_token_revocation"), data=json.dumps(body),
                         content_type="application/json", **extra)


@pytest.fixture
def caller(api, stream_manager):
    return api.login_ok(stream_manager.username)["access"]


@pytest.mark.usefixtures("ssf_on")
@pytest.mark.parametrize("subject", [
    lambda user: {"format": "iss_sub", "iss": ISSUER, "sub": str(user.pk)},
    lambda user: {"format": "email", "email": user.email},
    lambda user: {"format": "opaque", "id": str(user.pk)},
])
def test_every_session_of_the_user_ends(api, make_user, caller, subject):
    user = make_user(email="gtr@example.test")
    sessions = [api.login_ok(user.username) for _ in range(2)]
    assert revoke({"sub_id": subject(user)}, caller).status_code == 204
    assert not Session.objects.active().filter(user=user).exists()
    assert all(api.whoami(s["access"]).status_code == 401 for s in sessions)
    assert set(Session.objects.filter(user=user).values_list("revoked_reason", flat=True)) == {
        "global_revocation"}


def test_works_without_shared_signals_and_refuses_strangers(api, user, caller):
    api.login_ok(user.username)
    assert revoke({"sub_id": {"format": "opaque", "id": str(user.pk)}}).status_code == 401
    plain = api.login_ok(user.username)["access"]
    resp = revoke({"sub_id": {"format": "opaque", "id": str(user.pk)}}, plain)
    assert resp.status_code == 403
    assert revoke({"sub_id": {"format": "opaque", "id": str(user.pk)}}, caller).status_code == 204


@pytest.mark.parametrize("body, status", [
    ({"sub_id": {"format": "phone_number", "phone_number": "+1"}}, 400),
    ({"sub_id": {"format": "email"}}, 400),
    ({"sub_id": "alice"}, 400),
    ({}, 400),
    ({"sub_id": {"format": "opaque", "id": "99999999999999999999999"}}, 404),
    ({"sub_id": {"format": "email", "email": "nobody@example.test"}}, 404),
])
def test_bad_or_unknown_subjects(caller, body, status):
    assert revoke(body, caller).status_code == status
