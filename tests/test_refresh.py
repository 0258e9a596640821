"""`jwt_sessions.refresh.refresh_tokens`: a rotation hands out a new pair and retires the
old one; the previous refresh token within the grace is a retry, after it reuse, which
ends the session; with Redis kept or lost, the same answers."""
from __future__ import annotations

import pytest

from jwt_sessions import signals
from jwt_sessions.exceptions import RefreshTokenInvalid, RefreshTokenReused, SessionRevoked
from jwt_sessions.models import RevokeReason, Session
from jwt_sessions.refresh import refresh_tokens
from jwt_sessions.services import issue_tokens, revoke_session
from jwt_sessions.tokens import make_refresh_token

pytestmark = pytest.mark.django_db
GRACE = 10  # seconds: the default REFRESH_REUSE_GRACE


@pytest.fixture(params=[False, True], ids=["redis_kept", "redis_lost"])
def redis_lost(request, redis_conn):
    """Call it right before presenting the token under test."""
    return (lambda: redis_conn.flushdb()) if request.param else (lambda: None)


def test_a_rotation_gives_a_new_pair_of_the_same_session(user, redis_lost):
    first = issue_tokens(user)
    redis_lost()
    second = refresh_tokens(first.refresh)
    assert second.session_id == first.session_id and second.user_id == str(user.pk)
    assert second.refresh != first.refresh and second.access != first.access
    assert Session.objects.get(pk=first.session_id).revoked_at is None


def test_without_rotation_the_refresh_token_stays(user, jwt_settings):
    jwt_settings(ROTATE_REFRESH_TOKENS=False)
    first = issue_tokens(user)
    assert refresh_tokens(first.refresh).refresh == first.refresh
    assert refresh_tokens(first.refresh).session_id == first.session_id


def test_the_previous_token_within_the_grace_is_a_retry(user, clock, redis_lost):
    first = issue_tokens(user)
    refresh_tokens(first.refresh)
    clock.tick(GRACE - 1)
    redis_lost()
    retried = refresh_tokens(first.refresh)
    assert retried.session_id == first.session_id
    assert Session.objects.get(pk=first.session_id).revoked_at is None


def test_the_previous_token_after_the_grace_is_reuse_and_ends_the_session(
        user, clock, redis_lost, signal_log, django_capture_on_commit_callbacks):
    reused = signal_log(signals.refresh_token_reused)
    first = issue_tokens(user)
    second = refresh_tokens(first.refresh)
    clock.tick(GRACE + 1)
    redis_lost()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RefreshTokenReused):
        refresh_tokens(first.refresh)
    session = Session.objects.get(pk=first.session_id)
    assert session.revoked_reason == RevokeReason.REUSE_DETECTED
    assert [call["session_id"] for call in reused] == [session.pk]
    with pytest.raises(SessionRevoked):
        refresh_tokens(second.refresh)


def test_a_revoked_session_refreshes_no_more(user, redis_lost):
    pair = issue_tokens(user)
    revoke_session(pair.session_id)
    redis_lost()
    with pytest.raises(SessionRevoked):
        refresh_tokens(pair.refresh)


@pytest.mark.parametrize("raw", [None, "", "garbage", 42, "x" * 10_000])
def test_what_is_not_a_refresh_token_is_invalid(raw):
    with pytest.raises(RefreshTokenInvalid):
        refresh_tokens(raw)


def test_a_made_up_secret_for_a_real_session_is_invalid_and_harms_nothing(user, redis_lost):
    pair = issue_tokens(user)
    forged = make_refresh_token(pair.session_id, b"\0" * 32).value
    redis_lost()
    with pytest.raises(RefreshTokenInvalid):
        refresh_tokens(forged)
    assert refresh_tokens(pair.refresh).session_id == pair.session_id
