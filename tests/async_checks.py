"""The async access check as every real-server test runs it: counters due, one loop."""
from __future__ import annotations

from asgiref.sync import async_to_sync

from jwt_sessions import api as jwt_api
from jwt_sessions import counters
from jwt_sessions.redis.store import astore


def async_check_with_counters_due(access_token: str, monkeypatch) -> object:
    """`api.aauthenticate` once with counters due (so they ride in its round trip); the
    claims, or the exception raised."""
    counters.record("refreshes")
    monkeypatch.setattr(counters, "_last_flush", 0.0)

    async def run():
        try:
            return await jwt_api.aauthenticate(access_token)
        except Exception as exc:  # noqa: BLE001 - the answer under test
            return exc
        finally:
            await astore.aclose()

    return async_to_sync(run)()
