"""Attacks on introspect/: it must never call a token live that refresh/ would refuse."""
from __future__ import annotations

import pytest
from django.contrib.auth.hashers import make_password

from tests.conftest import assert_error
from tests.token_endpoints import introspect

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("change", [
    pytest.param({"is_active": False}, id="deactivated"),
    pytest.param({"password": make_password("another-password")}, id="password_changed"),
])
def test_a_refresh_token_whose_user_changed_behind_our_back_is_inactive(
        api, django_user_model, user, tokens, gateway, change):
    """A `QuerySet.update` sends no signal, so the row still says active; refresh/ reads
    the user and refuses, and so must introspection."""
    django_user_model.objects.filter(pk=user.pk).update(**change)
    assert introspect(api, tokens["refresh"], gateway).json() == {"active": False}
    assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")


def test_with_the_password_binding_off_a_changed_password_keeps_it_active(
        api, django_user_model, user, tokens, gateway, jwt_settings):
    jwt_settings(REVOKE_ON_PASSWORD_CHANGE=False)
    django_user_model.objects.filter(pk=user.pk).update(password=make_password("other"))
    assert introspect(api, tokens["refresh"], gateway).json()["active"] is True
