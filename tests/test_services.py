"""`jwt_sessions.services`: what opening, revoking and re-binding sessions leave behind,
in the database, in Redis and in the signals sent."""
from __future__ import annotations

import pytest

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
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


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
    assert session.refresh_token_bcrypt == ""  # no bcrypt at login: the first refresh's job
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
def test_rebinding_before_the_save_keeps_that_session_only(user):
    kept, other = issue_tokens(user), issue_tokens(user)
    user.set_password("a-new-" + PASSWORD)
    assert update_session_auth(user, kept.session_id) is True
    user.save()
    assert not _revoked(kept) and _revoked(other)


def test_after_the_save_the_session_that_save_revoked_is_restored(user, redis_conn):
    kept, other = issue_tokens(user), issue_tokens(user)
    user.set_password("a-new-" + PASSWORD)
    user.save()
    assert _revoked(kept)
    assert update_session_auth(user, str(kept.session_id)) is True
    assert not redis_conn.exists(layout.tombstone_key(kept.session_id))
    assert not _revoked(kept) and _revoked(other)
    assert update_session_auth(user, other.session_id) is True  # it too was that save's


def test_a_session_revoked_for_another_reason_is_not_restored(user):
    pair = issue_tokens(user)
    revoke_user_sessions(user, RevokeReason.LOGOUT)
    user.set_password("a-new-" + PASSWORD)
    user.save()
    assert update_session_auth(user, pair.session_id) is False
    assert _revoked(pair)


@pytest.mark.parametrize("session_id", [None, "garbage", 42,
                                        "00000000-0000-0000-0000-000000000000"])
def test_update_session_auth_names_no_session_for_a_bad_id(user, session_id):
    assert update_session_auth(user, session_id) is False
