"""Atomic refresh: many clients presenting the same refresh token at the same instant
never fork the session (at most one live refresh token, whatever the
concurrency). Runs on SQLite by default and on PostgreSQL in live mode."""
from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from jwt_sessions.models import Session
from jwt_sessions.redis import layout
from jwt_sessions.tokens import sha256_hex
from tests import jwt_forge as forge
from tests.conftest import Api, assert_error

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 16


def race(token: str, threads: int = THREADS) -> list[tuple[int, dict]]:
    """POST refresh/ with the same token from `threads` clients released together."""
    barrier = threading.Barrier(threads)
    results: list = [None] * threads

    def run(index: int) -> None:
        try:
            api = Api()
            barrier.wait(timeout=30)
            resp = api.refresh(token)
            results[index] = (resp.status_code, resp.json())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[index] = (None, repr(exc))
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert all(r is not None and r[0] in (200, 401) for r in results), results
    return results


def redis_keys(redis_conn, session_id: str, kind: str) -> set[str]:
    """The session's live Redis keys of one kind (`session` or `access`), by suffix."""
    sid = uuid.UUID(session_id)
    pattern = layout.session_key(sid, "0" * 64).rsplit(":", 1)[0] + ":*"
    if kind == "access":
        pattern = layout.access_key(sid, "*")
    return {key.decode().rsplit(":", 1)[1] for key in redis_conn.scan_iter(match=pattern)}


def assert_single_live_pair(api, redis_conn, session_id: str, pairs: list[dict]) -> dict:
    """Exactly one of `pairs` is the session's current pair, in the database and in
    Redis; every other access token is refused. Returns the live pair."""
    session = Session.objects.get(pk=session_id)
    assert session.revoked_at is None
    jtis = [forge.parts(pair["access"])[1]["jti"] for pair in pairs]
    assert len(set(jtis)) == len(jtis), "duplicate jti"
    assert len({pair["refresh"] for pair in pairs}) == len(pairs), "duplicate refresh token"
    live = [pair for pair in pairs if sha256_hex(pair["refresh"]) ==
            session.refresh_token_sha256]
    assert len(live) == 1
    assert forge.parts(live[0]["access"])[1]["jti"] == session.access_jti
    assert redis_keys(redis_conn, session_id, "session") <= {
        layout.token_part(session.refresh_token_sha256)}
    assert redis_keys(redis_conn, session_id, "access") <= {session.access_jti}
    for pair in pairs:
        expected = 200 if pair is live[0] else 401
        assert api.whoami(pair["access"]).status_code == expected
    return live[0]


@pytest.fixture(params=[False, True], ids=["redis_hit", "redis_empty"])
def start(request, api, user, redis_conn) -> dict:
    """A fresh login; with `redis_empty` every racer takes the database path."""
    data = api.login_ok(user.username)
    if request.param:
        redis_conn.flushdb()
    return data


def test_concurrent_refresh_never_forks_the_session(api, start, redis_conn, bcrypt_calls):
    results = race(start["refresh"])
    pairs = [body for status, body in results if status == 200]
    assert pairs, results
    # Within the grace every racer is a retry of the same client: each gets a pair, and
    # each pair supersedes the one before it; only the last one stays live.
    live = assert_single_live_pair(api, redis_conn, start["session_id"], pairs)
    bcrypt_calls["checkpw"] = 0
    after = api.refresh_ok(live["refresh"])  # a normal refresh, on the fast path
    assert bcrypt_calls["checkpw"] == 0
    assert api.whoami(after["access"]).status_code == 200


def test_superseded_racer_token_is_reuse(api, start, redis_conn):
    results = race(start["refresh"])
    session = Session.objects.get(pk=start["session_id"])
    pairs = [body for status, body in results if status == 200]
    losers = [pair for pair in pairs
              if sha256_hex(pair["refresh"]) != session.refresh_token_sha256]
    assert len(losers) == len(pairs) - 1
    if not losers:
        pytest.skip("the scheduler serialised the race: one racer only")
    assert_error(api.refresh(losers[0]["refresh"]), 401, "refresh_token_reused")
    assert Session.objects.get(pk=start["session_id"]).revoked_reason == "reuse_detected"


def test_concurrent_refresh_in_strict_mode_has_one_winner(api, user, jwt_settings,
                                                          redis_conn):
    jwt_settings(REFRESH_REUSE_GRACE=0)
    data = api.login_ok(user.username)
    results = race(data["refresh"])
    winners = [body for status, body in results if status == 200]
    assert len(winners) == 1, results
    assert {body["code"] for status, body in results if status == 401} <= {
        "refresh_token_reused", "session_revoked"}
    # Without a grace a second presentation is reuse: the session does not survive it.
    assert Session.objects.get(pk=data["session_id"]).revoked_reason == "reuse_detected"
    assert_error(api.refresh(winners[0]["refresh"]), 401, "session_revoked")


def test_concurrent_refresh_without_rotation_keeps_one_access_token(api, user, jwt_settings,
                                                                   redis_conn):
    jwt_settings(ROTATE_REFRESH_TOKENS=False)
    data = api.login_ok(user.username)
    results = race(data["refresh"])
    assert all(status == 200 for status, _body in results), results
    assert {body["refresh"] for _status, body in results} == {data["refresh"]}
    session = Session.objects.get(pk=data["session_id"])
    working = [body for _status, body in results
               if api.whoami(body["access"]).status_code == 200]
    assert len(working) == 1
    assert forge.parts(working[0]["access"])[1]["jti"] == session.access_jti
    assert redis_keys(redis_conn, data["session_id"], "access") <= {session.access_jti}
