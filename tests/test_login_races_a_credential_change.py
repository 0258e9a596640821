"""A login that checked a password is not left alive if the password changes or the user
is deactivated before its session is stored (the window holds the password check and a
bcrypt: about half a second). Threads with their own database connections play the
concurrent change, on SQLite and on PostgreSQL."""
from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from jwt_sessions import services
from jwt_sessions.models import Session
from jwt_sessions.redis import mirror
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


def change(user_pk: int, what: str) -> None:
    """A password change or a deactivation through the ORM, in another connection."""
    try:
        user = User.objects.get(pk=user_pk)
        if what == "password":
            user.set_password("changed-meanwhile-1")
        else:
            user.is_active = False
        user.save()
    finally:
        connection.close()


@pytest.mark.parametrize("what", ["password", "deactivation"])
def test_change_committed_after_the_password_check_refuses_the_login(
        api, user, what, monkeypatch):
    real = services.client_info

    def change_then_go_on(request):  # runs after authenticate() checked the password
        thread = threading.Thread(target=change, args=(user.pk, what))
        thread.start()
        thread.join()
        return real(request)

    monkeypatch.setattr(services, "client_info", change_then_go_on)
    assert_error(api.login(user.username), 401, "invalid_credentials")
    assert not Session.objects.active().filter(user=user).exists()


@pytest.mark.parametrize("what", ["password", "deactivation"])
def test_change_racing_the_session_insert_ends_the_new_session(
        api, user, what, monkeypatch):
    real = mirror.cache_session
    threads: list[threading.Thread] = []

    def cache_and_race(session, replaces=None):  # inside the transaction storing it
        thread = threading.Thread(target=change, args=(user.pk, what))
        thread.start()
        threads.append(thread)
        real(session, replaces)

    monkeypatch.setattr(mirror, "cache_session", cache_and_race)
    resp = api.login(user.username)
    for thread in threads:
        thread.join(timeout=30)
    if resp.status_code == 200:
        tokens = resp.json()
        assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
        assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")
    else:
        assert_error(resp, 401, "invalid_credentials")
    assert not Session.objects.active().filter(user=user).exists()
