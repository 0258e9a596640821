"""`jwt_sessions.cluster.ClusterConnectionFactory`, the path CACHES OPTIONS name; the
factory lives in the Redis wing (`jwt_sessions.redis.cluster`)."""
from __future__ import annotations

from .redis.cluster import ClusterConnectionFactory

__all__ = ["ClusterConnectionFactory"]
