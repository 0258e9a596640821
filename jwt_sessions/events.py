"""`jwt_sessions.events`, the path applications subscribe through; the receiver lives in
the Redis wing (`jwt_sessions.redis.events`)."""
from __future__ import annotations

from .redis.events import (
    GAP,
    REVOKED,
    ROTATED,
    SessionEvent,
    healthy,
    stop,
    subscribe,
    wait_until_healthy,
)

__all__ = ["REVOKED", "ROTATED", "GAP", "SessionEvent", "subscribe", "stop", "healthy",
           "wait_until_healthy"]
