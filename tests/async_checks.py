"""The async access check as every real-server test runs it: with counters due (so that
they ride in its round trip), in one event loop."""
from __future__ import annotations

from asgiref.sync import async_to_sync

from jwt_sessions import api as jwt_api
from jwt_sessions import counters
from jwt_sessions.redis.mirror import circuit
from jwt_sessions.redis.store import astore, store
from jwt_sessions.tokens import decode_access_token


def assert_async_check_answers(api, username: str, queries, monkeypatch) -> None:
    """`api.aauthenticate` with counters due: Redis vouches (no SQL), the counters reach
    the shared hash, and the circuit stays closed."""
    tokens = api.login_ok(username)
    before = store.read_counters().get("refreshes", 0)
    counters.record("refreshes")
    monkeypatch.setattr(counters, "_last_flush", 0.0)

    async def run():
        try:
            return await jwt_api.aauthenticate(tokens["access"])
        except Exception as exc:  # noqa: BLE001 - the answer under test
            return exc
        finally:
            await astore.aclose()

    with queries() as q:
        claims = async_to_sync(run)()
    assert claims == decode_access_token(tokens["access"])
    assert q.captured_queries == []  # answered by Redis
    assert not circuit.is_open() and not circuit.needs_replay
    assert store.read_counters()["refreshes"] > before

