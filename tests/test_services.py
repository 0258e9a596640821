"""`jwt_sessions.services`: what opening, revoking and re-binding sessions leave behind,
in the database, in Redis and in the signals sent."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from jwt_sessions import api as jwt_api
from jwt_sessions import signals
from jwt_sessions.access import authenticate_access
from jwt_sessions.exceptions import ClaimsHookFailed, SessionRevoked
from jwt_sessions.models import RevokeReason, Session
from jwt_sessions.redis import layout
from jwt_sessions.services import (
    issue_tokens,
    revoke_sessions,
    revoke_user_sessions,
    update_session_auth,
)
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db
User = get_user_model()


def _revoked(pair) -> bool:
    try:
        authenticate_access(pair.access)
    except SessionRevoked:
        return True
    return False


# ------------------------------------------------------------------ issue_tokens
def test_issue_tokens_stores_the_session_and_its_redis_keys(user, redis_conn):
    pair = issue_tokens(user, amr=["pwd"])
    session = Session.objects.get(pk=pair.session_id)
    assert session.user == user and session.amr == ["pwd"] and session.revoked_at is None
    assert redis_conn.exists(layout.access_key(session.pk, session.access_jti))
    assert redis_conn.exists(layout.session_key(session.pk, session.refresh_token_sha256))
    assert pair.token_type == "Bearer" and pair.user_id == str(user.pk)


def test_issue_tokens_refuses_a_string_amr_before_storing_anything(user):
    with pytest.raises(TypeError):
        issue_tokens(user, amr="pwd")
    assert not Session.objects.exists()


def test_a_failing_claims_hook_stores_no_session(user, jwt_settings):
    jwt_settings(CLAIMS_HOOK="tests.test_services.failing_hook")
    with pytest.raises(ClaimsHookFailed):
        issue_tokens(user)
    assert not Session.objects.exists()


def failing_hook(user, session_id):
    raise RuntimeError("the hook's own bug")


def test_the_session_limit_ends_the_least_recently_active(user, jwt_settings, clock):
    jwt_settings(MAX_SESSIONS_PER_USER=2)
    oldest = issue_tokens(user)
    clock.tick(1)
    kept = issue_tokens(user)
    clock.tick(1)
    newest = issue_tokens(user)
    assert Session.objects.get(pk=oldest.session_id).revoked_reason == RevokeReason.MAX_SESSIONS
    assert _revoked(oldest) and not _revoked(kept) and not _revoked(newest)


# ------------------------------------------------------------------ revoke_sessions
def test_revoke_sessions_tombstones_every_live_one_in_batches(user, make_user, redis_conn,
                                                              signal_log,
                                                              django_capture_on_commit_callbacks):
    revoked_log = signal_log(signals.session_revoked)
    pairs = [issue_tokens(user) for _ in range(5)]
    bystander = issue_tokens(make_user())
    with django_capture_on_commit_callbacks(execute=True):
        count = revoke_sessions(Session.objects.filter(user=user), RevokeReason.ADMIN,
                                batch_size=2, revoked_by=user)
    assert count == 5
    for pair in pairs:
        assert redis_conn.exists(layout.tombstone_key(pair.session_id)) and _revoked(pair)
    assert not _revoked(bystander)
    rows = Session.objects.filter(user=user)
    assert {(row.revoked_reason, row.revoked_by_id) for row in rows} == {("admin", user.pk)}
    assert sorted(c["session"].pk for c in revoked_log) == sorted(p.session_id for p in pairs)
    assert revoke_sessions(Session.objects.filter(user=user), RevokeReason.ADMIN) == 0


# ------------------------------------------------------------------ revoke_user_sessions
def test_revoke_user_sessions_counts_only_the_live_ones(user):
    ended, live = issue_tokens(user), issue_tokens(user)
    revoke_sessions(Session.objects.filter(pk=ended.session_id), RevokeReason.LOGOUT)
    assert revoke_user_sessions(user) == 1
    assert Session.objects.get(pk=ended.session_id).revoked_reason == RevokeReason.LOGOUT
    assert _revoked(live)


# ------------------------------------------------------------------ update_session_auth
def assert_ended_for_the_password_change(api, tokens: dict) -> None:
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")
    assert Session.objects.get(pk=tokens["session_id"]).revoked_reason == "password_changed"


def test_update_session_auth_after_save_keeps_that_session_only(api, user):
    here, elsewhere = api.login_ok(user.username), api.login_ok(user.username)
    user.set_password("a-brand-new-pass-1")
    user.save()
    assert jwt_api.update_session_auth(user, here["session_id"]) is True
    assert api.whoami(here["access"]).status_code == 200
    api.refresh_ok(here["refresh"])
    assert_ended_for_the_password_change(api, elsewhere)


def test_update_session_auth_after_save_takes_a_lazy_request_user(api, user):
    """A view passes `request.user`, a lazy wrapper around the user object it saved."""
    from django.utils.functional import SimpleLazyObject

    here = api.login_ok(user.username)
    lazy = SimpleLazyObject(lambda: user)
    lazy.set_password("a-brand-new-pass-1")
    lazy.save()
    assert jwt_api.update_session_auth(lazy, here["session_id"]) is True
    api.refresh_ok(here["refresh"])


def test_update_session_auth_before_save_keeps_that_session(api, user):
    here, elsewhere = api.login_ok(user.username), api.login_ok(user.username)
    user.set_password("a-brand-new-pass-1")
    assert jwt_api.update_session_auth(user, here["session_id"]) is True
    user.save()
    assert api.whoami(here["access"]).status_code == 200
    api.refresh_ok(here["refresh"])
    assert_ended_for_the_password_change(api, elsewhere)


def test_update_session_auth_cannot_restore_other_revocations(api, user, make_user):
    tokens = api.login_ok(user.username)
    assert api.logout(tokens["access"]).status_code == 204
    user.set_password("a-brand-new-pass-1")
    user.save()
    assert jwt_api.update_session_auth(user, tokens["session_id"]) is False
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    other = make_user()
    theirs = api.login_ok(other.username)
    assert jwt_api.update_session_auth(user, theirs["session_id"]) is False
    assert jwt_api.update_session_auth(user, "not-a-uuid") is False


def test_update_session_auth_from_another_user_object_does_not_restore(api, user):
    tokens = api.login_ok(user.username)
    user.set_password("a-brand-new-pass-1")
    user.save()
    assert jwt_api.update_session_auth(User.objects.get(pk=user.pk),
                                       tokens["session_id"]) is False
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


@pytest.mark.parametrize("session_id", [None, "garbage", 42,
                                        "00000000-0000-0000-0000-000000000000"])
def test_update_session_auth_names_no_session_for_a_bad_id(user, session_id):
    assert update_session_auth(user, session_id) is False
