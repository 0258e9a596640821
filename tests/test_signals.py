"""Signals fire once, with their documented arguments, and only after the commit."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import transaction

from jwt_sessions import api as jwt_api
from jwt_sessions import services, signals
from jwt_sessions.models import Session

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def received(signal):
    """Collect the keyword arguments of every send of `signal`."""
    calls: list[dict] = []

    def handler(sender, **kwargs):
        calls.append({"sender": sender, **kwargs})

    signal.connect(handler)
    try:
        yield calls
    finally:
        signal.disconnect(handler)


class Rollback(Exception):
    pass


def test_session_created_on_login_with_session_and_request(api, user):
    with received(signals.session_created) as calls:
        tokens = api.login_ok(user.username)
    assert len(calls) == 1
    assert calls[0]["sender"] is Session
    assert str(calls[0]["session"].pk) == tokens["session_id"]
    assert calls[0]["request"].path.endswith("/login/")


def test_session_created_fires_only_at_commit(user):
    with received(signals.session_created) as calls:
        with transaction.atomic():
            tokens = jwt_api.issue_tokens(user)
            assert calls == []
        assert [str(c["session"].pk) for c in calls] == [tokens["session_id"]]


def test_no_signal_when_the_transaction_rolls_back(user):
    with received(signals.session_created) as created, \
            received(signals.session_revoked) as revoked:
        with pytest.raises(Rollback), transaction.atomic():
            tokens = jwt_api.issue_tokens(user)
            jwt_api.revoke_session(tokens["session_id"])
            raise Rollback
    assert created == [] and revoked == []
    assert not Session.objects.exists()


def test_session_refreshed(api, user, tokens):
    with received(signals.session_refreshed) as calls:
        with transaction.atomic():
            api.refresh_ok(tokens["refresh"])
            assert calls == []
    assert len(calls) == 1
    assert str(calls[0]["session_id"]) == tokens["session_id"]
    assert str(calls[0]["user_id"]) == str(user.pk)


def test_session_revoked_with_reason(api, tokens):
    with received(signals.session_revoked) as calls:
        assert api.logout(tokens["access"]).status_code == 204
    assert [(str(c["session"].pk), c["reason"]) for c in calls] == [
        (tokens["session_id"], "logout")]


def test_session_revoked_at_commit_of_an_outer_transaction(user):
    jwt_api.issue_tokens(user)
    with received(signals.session_revoked) as calls:
        with transaction.atomic():
            services.revoke_user_sessions(user, "api")
            assert calls == []
    assert [c["reason"] for c in calls] == ["api"]


def test_refresh_token_reused(api, user, tokens, jwt_settings):
    jwt_settings(REFRESH_REUSE_GRACE=0)
    api.refresh_ok(tokens["refresh"])
    with received(signals.refresh_token_reused) as reused, \
            received(signals.session_revoked) as revoked:
        assert api.refresh(tokens["refresh"]).status_code == 401
    assert [str(c["session_id"]) for c in reused] == [tokens["session_id"]]
    assert str(reused[0]["user_id"]) == str(user.pk)
    assert [c["reason"] for c in revoked] == ["reuse_detected"]
