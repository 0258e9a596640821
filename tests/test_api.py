"""The Python API (`jwt_sessions.api`) for custom flows."""
import json
import uuid

import pytest
from django.contrib.auth.signals import user_logged_in
from django.test import RequestFactory

from jwt_sessions import api as jwt_api
from jwt_sessions import signals
from jwt_sessions.models import Session
from tests.conftest import UA_IPHONE, assert_error

pytestmark = pytest.mark.django_db


def test_issue_tokens_without_request_returns_login_body(api, user, signal_log,
                                                         django_capture_on_commit_callbacks):
    logins = signal_log(user_logged_in)
    created = signal_log(signals.session_created)
    with django_capture_on_commit_callbacks(execute=True):
        body = jwt_api.issue_tokens(user)
    assert set(body) == {"access", "refresh", "access_expires_at", "refresh_expires_at",
                         "session_id", "token_type"}
    json.dumps(body)  # JSON-ready
    session = Session.objects.get(pk=body["session_id"])
    assert session.user == user and session.device_type == "other" and session.ip_address is None
    assert logins == []
    assert [c["session"].pk for c in created] == [session.pk]
    assert api.whoami(body["access"]).json() == {"id": user.pk}
    assert api.refresh(body["refresh"]).status_code == 200


def test_issue_tokens_with_request_sends_user_logged_in_and_records_client(user, signal_log):
    logins = signal_log(user_logged_in)
    request = RequestFactory().post("/mfa/", HTTP_USER_AGENT=UA_IPHONE, REMOTE_ADDR="192.0.2.9")
    body = jwt_api.issue_tokens(user, request)
    assert [(c["request"], c["user"]) for c in logins] == [(request, user)]
    session = Session.objects.get(pk=body["session_id"])
    assert (session.device_type, session.ip_address) == ("mobile", "192.0.2.9")


def test_revoke_session_is_true_once_then_false(api, user):
    body = jwt_api.issue_tokens(user)
    assert jwt_api.revoke_session(body["session_id"]) is True
    assert_error(api.whoami(body["access"]), 401, "session_revoked")
    assert Session.objects.get().revoked_reason == "api"
    assert jwt_api.revoke_session(uuid.UUID(body["session_id"])) is False


@pytest.mark.parametrize("session_id", [uuid.uuid4(), str(uuid.uuid4()), "garbage", None, 42,
                                        "", ["x"]])
def test_revoke_unknown_or_malformed_session_is_false(session_id):
    assert jwt_api.revoke_session(session_id) is False


def test_revoke_session_with_custom_reason(user):
    body = jwt_api.issue_tokens(user)
    jwt_api.revoke_session(body["session_id"], reason="admin")
    assert Session.objects.get().revoked_reason == "admin"


def test_revoke_user_sessions_counts_and_refuses_them(api, user, make_user):
    bodies = [jwt_api.issue_tokens(user) for _ in range(3)]
    other = jwt_api.issue_tokens(make_user())
    assert jwt_api.revoke_user_sessions(user) == 3
    for body in bodies:
        assert_error(api.whoami(body["access"]), 401, "session_revoked")
    assert api.whoami(other["access"]).status_code == 200
    assert jwt_api.revoke_user_sessions(user) == 0


@pytest.mark.parametrize("as_type", [str, uuid.UUID])
def test_revoke_user_sessions_keeps_one_session(api, user, as_type):
    kept, *others = [jwt_api.issue_tokens(user) for _ in range(3)]
    count = jwt_api.revoke_user_sessions(user, keep_session_id=as_type(kept["session_id"]))
    assert count == 2
    assert api.whoami(kept["access"]).status_code == 200
    for body in others:
        assert_error(api.whoami(body["access"]), 401, "session_revoked")


def test_revoke_user_sessions_with_malformed_keep_id_keeps_nothing(user):
    jwt_api.issue_tokens(user)
    assert jwt_api.revoke_user_sessions(user, keep_session_id="garbage") == 1
