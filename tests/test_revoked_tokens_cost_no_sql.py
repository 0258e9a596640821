"""A revoked session's access token is refused from Redis alone: a client replaying it
costs the database nothing, however often it tries."""
from __future__ import annotations

import pytest

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_revoked_access_token_costs_no_sql(api, tokens, queries):
    assert api.logout(tokens["access"]).status_code == 204
    with queries() as captured:
        for _ in range(20):
            assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    assert len(captured) == 0, [q["sql"] for q in captured]


def test_revoked_by_another_session_costs_no_sql(api, user, queries):
    first, second = api.login_ok(user.username), api.login_ok(user.username)
    assert api.logout_all(second["access"]).status_code == 204
    with queries() as captured:
        assert_error(api.whoami(first["access"]), 401, "session_revoked")
    assert len(captured) == 0


def test_revoked_token_is_refused_after_redis_lost_the_tombstone(api, tokens, redis_conn):
    """Without the tombstone (a flush) the database still refuses it."""
    assert api.logout(tokens["access"]).status_code == 204
    redis_conn.flushdb()
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
