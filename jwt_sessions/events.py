"""`jwt_sessions.events`, the path applications subscribe through; the receiver lives in
the Redis wing (`jwt_sessions.redis.events`)."""
from __future__ import annotations

from .redis.events import (
    GAP,
    REVOKED,
    ROTATED,
    SessionEvent,
    drain,
    healthy,
    proof_age,
    stop,
    subscribe,
    wait_until_healthy,
)

__all__ = ["REVOKED", "ROTATED", "GAP", "SessionEvent", "subscribe", "stop", "healthy",
           "proof_age", "drain", "wait_until_healthy"]
