"""Every Redis client jwt_sessions uses, built from the django-redis cache named by
`CACHE_ALIAS`, in one place (as Django's `RedisCacheClient` owns its pools and clients).

- `sync()`: django-redis's own client for the alias (its pool, Sentinel or Cluster
  through its `CONNECTION_FACTORY`, the embedded fakeredis stand-in).
- `for_this_loop()`: a `redis.asyncio` client configured from the same OPTIONS
  (location, username and password, TLS through `rediss://` and
  `CONNECTION_POOL_KWARGS`, socket timeouts, Sentinel or Cluster). An asyncio client
  belongs to the event loop it first ran on, so there is one per loop (under an ASGI
  server, one per process); settings changes drop them all.
- `for_events(timeout)`: the pub/sub receiver's client, on a pool of its own whose socket
  timeouts cannot hold the receiver past its heartbeat bound.
"""
from __future__ import annotations

import asyncio
import weakref
from typing import Any
from urllib.parse import parse_qs, urlparse

import redis
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django_redis import get_redis_connection
from django_redis.pool import ConnectionFactory, SentinelConnectionFactory, get_connection_factory
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError
from redis.retry import Retry

from ..conf import cached_per_settings, jwt_settings
from .cluster import ClusterConnectionFactory

__all__ = ["REDIS_ERRORS", "NoScriptError", "ResponseError", "StoreUnavailable", "clients",
           "is_cluster", "RANDOM_NODE"]

# A cluster with no reachable node raises RedisClusterException, which is no RedisError.
# OSError: a socket failure that redis-py did not wrap is the same outage.
REDIS_ERRORS = (RedisError, RedisClusterException, OSError)
RANDOM_NODE = RedisCluster.RANDOM  # any node: classic pub/sub reaches every node


class StoreUnavailable(Exception):
    """Redis could not be reached (or answered with an error)."""


def is_cluster(conn: Any) -> bool:
    """Whether `conn` (sync or asyncio) is a Redis Cluster client, whose pipelines refuse
    multi-key commands, scripts and PUBLISH."""
    return isinstance(conn, (RedisCluster, AsyncRedisCluster))


def _first_location(location: Any) -> str:
    """The server django-redis writes to: the first of LOCATION's list."""
    servers = location.split(",") if isinstance(location, str) else list(location)
    return servers[0].strip()


@cached_per_settings
def _clients_by_loop() -> weakref.WeakKeyDictionary:
    """One asyncio client per event loop (a client works only on the loop it began on),
    rebuilt when the cache settings change."""
    return weakref.WeakKeyDictionary()


class RedisClients:
    """Builds and keeps the clients of the cache named by `CACHE_ALIAS`."""

    def sync(self) -> Any:
        try:
            return get_redis_connection(jwt_settings.CACHE_ALIAS)
        except (*REDIS_ERRORS, NotImplementedError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    def for_this_loop(self) -> Any:
        """The running event loop's asyncio client (built on first use)."""
        by_loop = _clients_by_loop()
        loop = asyncio.get_running_loop()
        if loop not in by_loop:
            try:
                by_loop[loop] = self.build_asyncio()
            except (*REDIS_ERRORS, ImproperlyConfigured, ValueError, KeyError) as exc:
                raise StoreUnavailable(type(exc).__name__) from exc
        return by_loop[loop]

    async def aclose(self) -> None:
        """Close this loop's client (tests, and loops that end before the process)."""
        client = _clients_by_loop().pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def build_asyncio(self) -> Any:
        """A new `redis.asyncio` client for the cache named by `CACHE_ALIAS`."""
        config = django_settings.CACHES[jwt_settings.CACHE_ALIAS]
        options = dict(config.get("OPTIONS") or {})
        location = _first_location(config["LOCATION"])
        pool_kwargs = dict(options.get("CONNECTION_POOL_KWARGS") or {})
        if "server" in pool_kwargs:  # the embedded stand-in: share its in-memory server
            from fakeredis.aioredis import FakeRedis

            return FakeRedis(server=pool_kwargs["server"])
        factory = get_connection_factory(options=options)  # django-redis reads them for us
        kwargs = factory.make_connection_params(location)
        kwargs.pop("parser_class")  # a sync parser: the asyncio client picks its own
        url = kwargs.pop("url")
        kwargs.update(pool_kwargs)
        kwargs.pop("connection_class", None)
        client_kwargs = options.get("REDIS_CLIENT_KWARGS", {})
        if isinstance(factory, SentinelConnectionFactory):
            from redis.asyncio.sentinel import Sentinel

            parsed = urlparse(url)
            db = int(parsed.path.lstrip("/") or 0)
            sentinel = Sentinel(options["SENTINELS"],
                                sentinel_kwargs=options.get("SENTINEL_KWARGS"), **kwargs)
            if parse_qs(parsed.query).get("is_master", ["true"])[0].lower() in ("0", "false"):
                return sentinel.slave_for(parsed.hostname, db=db)
            return sentinel.master_for(parsed.hostname, db=db)
        if isinstance(factory, ClusterConnectionFactory):
            return AsyncRedisCluster.from_url(url, **kwargs, **client_kwargs)
        if type(factory) is not ConnectionFactory:
            raise ImproperlyConfigured("jwt_sessions has no asyncio client for "
                                       f"CONNECTION_FACTORY {type(factory).__qualname__}")
        return AsyncRedis.from_url(url, **kwargs, **client_kwargs)

    def for_events(self, timeout: float) -> Any:
        """A client with the cache's connection settings, on a pool of its own, with
        socket timeouts no longer than `timeout`, so that a dead link cannot hold the
        receiver longer than its heartbeat bound. A Sentinel, Cluster or custom pool is
        used as configured (give it SOCKET_TIMEOUT)."""
        conn = self.sync()
        pool = getattr(conn, "connection_pool", None)
        if type(pool) is not redis.ConnectionPool:
            return conn
        kwargs = dict(pool.connection_kwargs)
        for name in ("socket_timeout", "socket_connect_timeout"):
            if kwargs.get(name) is None or kwargs[name] > timeout:
                kwargs[name] = timeout
        kwargs["retry"] = Retry(NoBackoff(), 0)  # the receiver reconnects on its own terms
        return redis.Redis(connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, max_connections=4, **kwargs))


clients = RedisClients()
