"""No work for strangers: a refresh token that is not genuine (a made-up token, or a real
session id with a made-up secret) costs no bcrypt and is refused alike whether or not the
session it names exists, so it is neither a CPU lever nor an oracle."""
from __future__ import annotations

import base64
import secrets
import uuid

import pytest

from jwt_sessions.tokens import parse_refresh_token
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def forged(session_id: str | uuid.UUID) -> str:
    """A well-formed refresh token naming `session_id`, with 64 random bytes."""
    raw = uuid.UUID(str(session_id)).bytes + secrets.token_bytes(64)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def refused(api, token: str) -> dict:
    return assert_error(api.refresh(token), 401, "refresh_token_invalid")


def test_forged_secret_for_a_real_session_costs_no_bcrypt(api, tokens, bcrypt_calls):
    for _ in range(5):
        refused(api, forged(tokens["session_id"]))
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 0}
    api.refresh_ok(tokens["refresh"])  # the genuine session is untouched


def test_forged_secret_for_a_revoked_session_costs_no_bcrypt(api, tokens, bcrypt_calls):
    assert api.logout(tokens["access"]).status_code == 204
    refused(api, forged(tokens["session_id"]))
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 0}


def test_real_and_unknown_session_ids_get_the_same_answer(api, tokens, bcrypt_calls):
    real = refused(api, forged(tokens["session_id"]))
    unknown = refused(api, forged(uuid.uuid4()))
    assert real == unknown
    assert bcrypt_calls == {"hashpw": 0, "checkpw": 0}


def test_genuine_token_runs_bcrypt_once_on_the_database_path(api, user, redis_conn,
                                                             jwt_settings, bcrypt_calls):
    """Without rotation the same token comes back; Redis lost, the database decides, and
    bcrypt confirms the secret once per process, not on every fallback."""
    jwt_settings(ROTATE_REFRESH_TOKENS=False)
    tokens = api.login_ok(user.username)
    for _ in range(3):
        redis_conn.flushdb()
        api.refresh_ok(tokens["refresh"])
    assert bcrypt_calls == {"hashpw": 1, "checkpw": 1}  # the login's hash, one check


def test_old_rotated_token_is_still_reuse(api, tokens, redis_conn):
    """The cheap check recognises every token of a session (they share its secret), so a
    stolen token two rotations old is still caught as reuse, not waved off as forged."""
    first = api.refresh_ok(tokens["refresh"])
    api.refresh_ok(first["refresh"])
    redis_conn.flushdb()
    assert_error(api.refresh(tokens["refresh"]), 401, "refresh_token_reused")
    assert parse_refresh_token(tokens["refresh"]) is not None
