"""Redis Cluster for django-redis, which has no cluster client of its own.

    CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://10.0.0.1:6379/0",        # any node: the rest is discovered
        "OPTIONS": {
            "CONNECTION_FACTORY": "jwt_sessions.cluster.ClusterConnectionFactory",
            "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5,
        },
    }}

The factory hands django-redis a `redis.cluster.RedisCluster` in place of `redis.Redis`;
jwt_sessions keeps every multi-key command inside one hash tag, so it runs unchanged.
"""
from __future__ import annotations

import threading
from typing import Any

from django_redis.pool import ConnectionFactory
from redis.cluster import RedisCluster

# Connection settings django-redis derives from OPTIONS that RedisCluster understands.
_PASSED_ON = ("username", "password", "socket_timeout", "socket_connect_timeout")


class ClusterConnectionFactory(ConnectionFactory):
    """Builds one `RedisCluster` per LOCATION, shared by every thread of the process.

    `REDIS_CLIENT_KWARGS` in OPTIONS go to `RedisCluster` (e.g. `read_from_replicas`,
    `require_full_coverage`); `CONNECTION_POOL_KWARGS` to each node's connections.
    """

    # Process-global like django-redis's own pools: Django builds a cache client per
    # thread, and a cluster client (one pool per node) is expensive to discover.
    _clusters: dict[str, RedisCluster] = {}
    _lock = threading.Lock()

    def connect(self, url: str) -> RedisCluster:
        params = self.make_connection_params(url)
        with self._lock:
            if url not in self._clusters:
                self._clusters[url] = self.get_connection(params)
            return self._clusters[url]

    def get_connection(self, params: dict[str, Any]) -> RedisCluster:
        kwargs = {name: params[name] for name in _PASSED_ON if name in params}
        kwargs.update(self.pool_cls_kwargs)
        kwargs.update(self.redis_client_cls_kwargs)
        return RedisCluster.from_url(params["url"], **kwargs)

    def disconnect(self, connection: RedisCluster) -> None:
        connection.disconnect_connection_pools()

    @classmethod
    def forget_clients(cls) -> None:
        """Close and drop every cluster client (tests; after a topology change)."""
        with cls._lock:
            clients = list(cls._clusters.values())
            cls._clusters.clear()
        for client in clients:
            client.close()
