"""`authenticated_with(*methods)`: an action that demands how the user last proved who
they are (the token's `amr`, RFC 8176), answered with an RFC 9470 challenge."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from django.utils import timezone

from jwt_sessions import api as jwt_api
from jwt_sessions.exceptions import MethodRequired
from jwt_sessions.permissions import authenticated_with
from jwt_sessions.tokens import AccessClaims
from tests.conftest import assert_error, bearer

pytestmark = pytest.mark.django_db

CHALLENGE = ('Bearer error="insufficient_user_authentication", '
             'error_description="authenticate with hwk"')


def passkey_only(api, access: str):
    return api.post("/api/passkey-only/", {}, **bearer(access))


def test_a_password_session_is_challenged_for_a_passkey(api, tokens):
    resp = passkey_only(api, tokens["access"])
    assert_error(resp, 401, "reauthentication_required")
    assert resp["WWW-Authenticate"] == CHALLENGE


def test_a_passkey_session_passes(api, user):
    pair = jwt_api.issue_tokens(user, amr=["hwk"])
    assert passkey_only(api, pair["access"]).json() == {"done": True}


def test_a_multi_factor_session_without_the_method_is_challenged(api, user):
    pair = jwt_api.issue_tokens(user, amr=["pwd", "otp", "mfa"])
    assert_error(passkey_only(api, pair["access"]), 401, "reauthentication_required")


def _request_with(amr: list[str]) -> SimpleNamespace:
    now = timezone.now()
    return SimpleNamespace(auth=AccessClaims(user_id="1", session_id=uuid.uuid4(), jti="j",
                                             expires_at=now, auth_time=now, amr=tuple(amr)))


def test_any_of_the_named_methods_passes():
    permission = authenticated_with("swk", "hwk")()
    assert permission.has_permission(_request_with(["swk"]), None)
    assert permission.has_permission(_request_with(["pwd", "hwk", "mfa"]), None)
    with pytest.raises(MethodRequired) as raised:
        permission.has_permission(_request_with(["pwd"]), None)
    assert raised.value.auth_header.endswith('error_description="authenticate with hwk or swk"')


def test_a_request_without_a_jwt_sessions_token_is_refused(api):
    resp = api.post("/api/passkey-only/", {})
    assert resp.status_code == 401  # DRF's stock not_authenticated: no credentials at all
    assert "insufficient_user_authentication" not in resp["WWW-Authenticate"]


@pytest.mark.parametrize("methods", [(), ("",), ('hwk", x="y',), (3,)])
def test_method_names_are_checked_when_the_class_is_made(methods):
    with pytest.raises(ValueError, match="method names"):
        authenticated_with(*methods)
