"""One rule for who may act (`USER_AUTHENTICATION_RULE`, simplejwt's name), applied by
every door where it loads the user: a user the rule refuses gets no session, and a
session of a user it stops accepting is refused (and revoked where the row is read) at
login, refresh, the DRF class, django-ninja, the Channels handshake, the database path
of `api.aauthenticate`, introspection and reauthentication."""
from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import Client

from jwt_sessions import api as jwt_api
from jwt_sessions.exceptions import SessionRevoked
from jwt_sessions.models import RevokeReason, Session
from jwt_sessions.redis.store import astore
from tests.conftest import assert_error
from tests.test_channels import handshake
from tests.test_reauthenticate import reauthenticate
from tests.token_endpoints import grant_introspection, introspect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def staff_only(jwt_settings):
    jwt_settings(USER_AUTHENTICATION_RULE="tests.rules.staff_only")


@pytest.fixture
def staff(make_user):
    return make_user(is_staff=True)


@pytest.fixture
def staff_tokens(api, staff):
    return api.login_ok(staff.username)


def demote(user) -> None:
    """Behind the ORM's back: no signal, no save."""
    get_user_model().objects.filter(pk=user.pk).update(is_staff=False)


def test_user_rule_refuses_the_login_of_a_user_it_refuses(api, user):
    assert_error(api.login(user.username), 401, "invalid_credentials")
    assert not Session.objects.exists()


def test_user_rule_lets_the_users_it_accepts_in(api, staff, staff_tokens):
    assert api.me(staff_tokens["access"]).status_code == 200


def test_user_rule_ends_the_session_at_refresh(api, staff, staff_tokens):
    demote(staff)
    assert_error(api.refresh(staff_tokens["refresh"]), 401, "session_revoked")
    assert Session.objects.get().revoked_reason == RevokeReason.USER_DEACTIVATED


def test_user_rule_applies_when_drf_loads_the_user(api, staff, staff_tokens):
    demote(staff)
    assert api.whoami(staff_tokens["access"]).status_code == 200  # the pk costs nothing
    assert_error(api.me(staff_tokens["access"]), 401, "session_revoked")


@pytest.mark.urls("tests.ninja_urls")
@pytest.mark.parametrize("path", ["/ninja/sync/me", "/ninja/async/me"])
def test_user_rule_applies_when_ninja_loads_the_user(staff, staff_tokens, path):
    demote(staff)
    resp = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {staff_tokens['access']}")
    assert_error(resp, 401, "session_revoked")


def test_user_rule_refuses_the_channels_handshake(staff, staff_tokens):
    assert handshake(staff_tokens["access"])[0]
    demote(staff)
    connected, _, _ = handshake(staff_tokens["access"])
    assert not connected


def test_user_rule_applies_on_the_database_path_of_aauthenticate(staff, staff_tokens,
                                                                 redis_conn):
    demote(staff)
    redis_conn.flushdb()  # the database decides, and reads the user with the session

    async def check():
        try:
            return await jwt_api.aauthenticate(staff_tokens["access"])
        finally:
            await astore.aclose()

    with pytest.raises(SessionRevoked):
        async_to_sync(check)()


def test_user_rule_makes_introspection_inactive(api, staff, staff_tokens, make_user,
                                                redis_conn):
    """Where introspection reads the user: always for a refresh token (its row), for an
    access token when the database decides. A Redis hit reads no user (a gateway's
    repeat introspection costs no SQL), as a DRF view that reads only the pk."""
    gateway = make_user(is_staff=True)
    grant_introspection(gateway)
    caller = api.login_ok(gateway.username)["access"]
    assert introspect(api, staff_tokens["access"], caller).json()["active"] is True
    demote(staff)
    assert introspect(api, staff_tokens["refresh"], caller).json() == {"active": False}
    redis_conn.flushdb()
    caller = api.login_ok(gateway.username)["access"]
    assert introspect(api, staff_tokens["access"], caller).json() == {"active": False}


def test_user_rule_refuses_reauthentication(api, staff, staff_tokens):
    demote(staff)
    assert_error(reauthenticate(api, staff_tokens["access"]), 401, "session_revoked")


def test_user_rule_may_be_a_callable(api, user, jwt_settings):
    jwt_settings(USER_AUTHENTICATION_RULE=lambda user: user.username.startswith("user"))
    assert api.login(user.username).status_code == 200


@pytest.mark.parametrize("rule", ["tests.rules.nothing_here", 42])
def test_user_rule_that_cannot_be_used_fails_the_checks(jwt_settings, rule):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    jwt_settings(USER_AUTHENTICATION_RULE=rule)
    with pytest.raises(SystemCheckError, match="USER_AUTHENTICATION_RULE"):
        call_command("check")
