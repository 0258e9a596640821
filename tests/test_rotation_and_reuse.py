"""Refresh rotation with reuse detection.

`redis_lost` runs a scenario twice: as is, and with Redis emptied just before the token
under test comes back (FLUSHDB: the suite's Redis is shared by parallel runs in live
mode, and our app keeps everything in that one db, so to it this is FLUSHALL).
"""
from __future__ import annotations

import base64
import secrets
import uuid

import pytest

from jwt_sessions import signals
from jwt_sessions.models import Session
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)

GRACE = 10  # seconds: the default REFRESH_REUSE_GRACE


@pytest.fixture(params=[False, True], ids=["redis_kept", "redis_lost"])
def redis_lost(request, redis_conn):
    """Call it right before presenting the token under test."""
    return (lambda: redis_conn.flushdb()) if request.param else (lambda: None)


def row(data: dict) -> Session:
    return Session.objects.get(pk=data["session_id"])


def assert_reuse_revoked(api, reused: str, session: dict, alive: list[dict], reused_log):
    """`reused` is refused as reuse; the whole session is dead, every token of it."""
    assert_error(api.refresh(reused), 401, "refresh_token_reused")
    revoked = row(session)
    assert revoked.revoked_at is not None
    assert revoked.revoked_reason == "reuse_detected"
    assert [call["session_id"] for call in reused_log] == [revoked.pk]
    for pair in alive:
        assert_error(api.whoami(pair["access"]), 401, "session_revoked")
        assert_error(api.refresh(pair["refresh"]), 401, "session_revoked")


@pytest.fixture
def reused_log(signal_log):
    return signal_log(signals.refresh_token_reused)


def test_refresh_rotates_the_refresh_token(api, tokens):
    new = api.refresh_ok(tokens["refresh"])
    assert new["refresh"] != tokens["refresh"]
    assert new["session_id"] == tokens["session_id"]
    assert_error(api.whoami(tokens["access"]), 401, "token_invalid")  # superseded
    assert api.whoami(new["access"]).status_code == 200


def test_previous_token_after_grace_is_reuse(api, tokens, clock, redis_lost, reused_log):
    new = api.refresh_ok(tokens["refresh"])
    clock.tick(GRACE + 1)
    redis_lost()
    assert_reuse_revoked(api, tokens["refresh"], tokens, [new], reused_log)


def test_previous_token_within_grace_is_a_retry(api, tokens, clock, redis_lost, reused_log):
    first = api.refresh_ok(tokens["refresh"])
    clock.tick(GRACE - 2)
    redis_lost()
    retry = api.refresh_ok(tokens["refresh"])
    assert retry["refresh"] not in (first["refresh"], tokens["refresh"])
    # The retry's pair supersedes the pair issued a moment before ...
    assert_error(api.whoami(first["access"]), 401, "token_invalid")
    assert api.whoami(retry["access"]).status_code == 200
    assert row(tokens).revoked_at is None
    # ... so that superseded refresh token is now reuse.
    assert_reuse_revoked(api, first["refresh"], tokens, [retry], reused_log)


def test_grace_counts_from_the_first_use_of_the_previous_token(api, tokens, clock, redis_lost,
                                                               reused_log):
    api.refresh_ok(tokens["refresh"])  # first use of the login token: the grace starts
    clock.tick(GRACE - 4)
    retry = api.refresh_ok(tokens["refresh"])  # a retry: must not restart the grace
    clock.tick(5)  # within GRACE of the retry, past GRACE since the first use
    redis_lost()
    assert_reuse_revoked(api, tokens["refresh"], tokens, [retry], reused_log)


def test_older_token_is_reuse_even_within_grace(api, tokens, clock, redis_lost, reused_log):
    second = api.refresh_ok(tokens["refresh"])
    clock.tick(1)
    third = api.refresh_ok(second["refresh"])
    clock.tick(1)
    redis_lost()
    assert_reuse_revoked(api, tokens["refresh"], tokens, [third], reused_log)


def test_strict_mode_without_grace(api, tokens, jwt_settings, redis_lost, reused_log):
    jwt_settings(REFRESH_REUSE_GRACE=0)
    new = api.refresh_ok(tokens["refresh"])
    redis_lost()
    assert_reuse_revoked(api, tokens["refresh"], tokens, [new], reused_log)


def test_current_token_still_refreshes_after_redis_lost_its_data(api, tokens, redis_conn,
                                                                 bcrypt_calls):
    new = api.refresh_ok(tokens["refresh"])
    redis_conn.flushdb()
    newer = api.refresh_ok(new["refresh"])
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 1}  # the database path checked bcrypt
    assert api.whoami(newer["access"]).status_code == 200
    assert_error(api.whoami(new["access"]), 401, "token_invalid")
    api.refresh_ok(newer["refresh"])  # Redis was rehydrated: back on the fast path
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 1}


def test_redis_hit_refresh_runs_no_bcrypt(api, tokens, bcrypt_calls):
    for _ in range(3):
        tokens = api.refresh_ok(tokens["refresh"])
    assert api.whoami(tokens["access"]).status_code == 200
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 0}


def test_revoked_session_cannot_refresh(api, tokens, redis_lost):
    assert api.logout(tokens["access"]).status_code == 204
    redis_lost()
    assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")
    assert row(tokens).revoked_reason == "logout"


def test_revocation_known_only_to_the_database_still_wins(api, tokens):
    """Redis still vouches for the token, but the row says revoked: the compare-and-swap
    on the row refuses the rotation."""
    Session.objects.filter(pk=tokens["session_id"]).update(
        revoked_at=row(tokens).created_at, revoked_reason="admin")
    assert_error(api.refresh(tokens["refresh"]), 401, "session_revoked")


def _forged(session_id: str) -> str:
    raw = uuid.UUID(session_id).bytes + secrets.token_bytes(64)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("value", ["", "x" * 107, "not-a-token", "A" * 108, 42, None,
                                   ["a"], {"a": 1}])
def test_malformed_refresh_token_is_invalid(api, tokens, value):
    resp = api.refresh(value)
    assert resp.status_code in (400, 401), resp.content
    if resp.status_code == 401:
        assert_error(resp, 401, "refresh_token_invalid")


def test_forged_token_naming_a_real_session_neither_works_nor_revokes_it(api, tokens,
                                                                         redis_lost):
    redis_lost()
    assert_error(api.refresh(_forged(tokens["session_id"])), 401, "refresh_token_invalid")
    assert row(tokens).revoked_at is None
    api.refresh_ok(tokens["refresh"])
