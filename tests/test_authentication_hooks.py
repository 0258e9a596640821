"""The authentication class's steps are methods a project can override one at a time."""
from __future__ import annotations

import pytest
from django.test import RequestFactory

from jwt_sessions.authentication import JWTSessionAuthentication
from jwt_sessions.exceptions import SessionRevoked
from tests.conftest import assert_error, bearer

pytestmark = pytest.mark.django_db


class StaffOnly(JWTSessionAuthentication):
    def load_user(self, model, pk):
        user = super().load_user(model, pk)
        if not user.is_staff:
            raise SessionRevoked("Staff only.")
        return user


class FromOwnHeader(JWTSessionAuthentication):
    def get_header(self, request):
        token = request.META.get("HTTP_X_ACCESS_TOKEN")
        return f"Bearer {token}" if token else None


def request_with(**meta):
    return RequestFactory().get("/", **meta)


def test_overridden_user_rule_applies_when_the_user_loads(tokens):
    user, claims = StaffOnly().authenticate(request_with(**bearer(tokens["access"])))
    assert user.pk == int(claims.user_id)  # the pk costs nothing...
    with pytest.raises(SessionRevoked):
        user.username  # ...the rule runs on load  # noqa: B018


def test_overridden_header_reads_the_token_from_elsewhere(tokens):
    user, claims = FromOwnHeader().authenticate(
        request_with(HTTP_X_ACCESS_TOKEN=tokens["access"]))
    assert str(claims.session_id) == tokens["session_id"]
    assert FromOwnHeader().authenticate(request_with()) is None


def test_other_schemes_are_left_to_other_classes(tokens):
    assert JWTSessionAuthentication().authenticate(
        request_with(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")) is None


def test_inactive_user_is_refused_when_loaded(api, user, tokens):
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert_error(api.me(tokens["access"]), 401, "session_revoked")
