"""Redis from async code: the access check without blocking the event loop.

The client is a `redis.asyncio` one configured from the same django-redis cache as the
sync store (`CACHE_ALIAS`: location, username and password, TLS through `rediss://` and
`CONNECTION_POOL_KWARGS`, socket timeouts, Sentinel or Cluster through its
`CONNECTION_FACTORY`, the embedded fakeredis stand-in). Key names come from `store`: no
key is named here.

An asyncio client belongs to the event loop it first ran on, so there is one per loop
(under an ASGI server, one per process); settings changes drop them all.
"""
from __future__ import annotations

import asyncio
import uuid
import weakref
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django_redis.pool import get_connection_factory

from .conf import cached_per_settings, jwt_settings
from .store import _REDIS_ERRORS, REPLAYED, StoreUnavailable, _ms, store

_SENTINEL_FACTORY = "django_redis.pool.SentinelConnectionFactory"
_CLUSTER_FACTORY = "jwt_sessions.cluster.ClusterConnectionFactory"


def _first_location(location: Any) -> str:
    """The server django-redis writes to: the first of LOCATION's list."""
    servers = location.split(",") if isinstance(location, str) else list(location)
    return servers[0].strip()


def build_client() -> Any:
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
    factory_path = f"{type(factory).__module__}.{type(factory).__qualname__}"
    if factory_path == _SENTINEL_FACTORY:
        from redis.asyncio.sentinel import Sentinel

        parsed = urlparse(url)
        db = int(parsed.path.lstrip("/") or 0)
        sentinel = Sentinel(options["SENTINELS"], sentinel_kwargs=options.get("SENTINEL_KWARGS"),
                            **kwargs)
        if parse_qs(parsed.query).get("is_master", ["true"])[0].lower() in ("0", "false"):
            return sentinel.slave_for(parsed.hostname, db=db)
        return sentinel.master_for(parsed.hostname, db=db)
    if factory_path == _CLUSTER_FACTORY:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(url, **kwargs, **options.get("REDIS_CLIENT_KWARGS", {}))
    if factory_path != "django_redis.pool.ConnectionFactory":
        raise ImproperlyConfigured(
            f"jwt_sessions has no asyncio client for CONNECTION_FACTORY {factory_path}")
    from redis.asyncio import Redis

    return Redis.from_url(url, **kwargs, **options.get("REDIS_CLIENT_KWARGS", {}))


@cached_per_settings
def _clients_by_loop() -> weakref.WeakKeyDictionary:
    """One asyncio client per event loop (a client works only on the loop it began on),
    rebuilt when the cache settings change."""
    return weakref.WeakKeyDictionary()


class AsyncRedisStore:
    """The async twin of `RedisStore.check_access`; raises StoreUnavailable."""

    def client(self) -> Any:
        clients = _clients_by_loop()
        loop = asyncio.get_running_loop()
        if loop not in clients:
            try:
                clients[loop] = build_client()
            except (*_REDIS_ERRORS, ImproperlyConfigured, ValueError, KeyError) as exc:
                raise StoreUnavailable(type(exc).__name__) from exc
        return clients[loop]

    async def check_access(self, session_id: uuid.UUID, jti: str,
                           counters: dict[str, int] | None = None,
                           claim: tuple[str, timedelta] | None = None) -> str:
        """HIT, MISS, REVOKED or REPLAYED: one MGET (with the counters and the DPoP
        proof's claim pipelined), one round trip."""
        keys = store.access_check_keys(session_id, jti)
        claimed = True
        try:
            conn = self.client()
            if not counters and claim is None:
                values = await conn.mget(keys)
            else:
                pipe = conn.pipeline(transaction=False)
                pipe.mget(keys)
                store.add_claim(pipe, claim)
                if counters:
                    store._add_counters(pipe, counters)
                results = await pipe.execute()
                values, claimed = results[0], claim is None or bool(results[1])
        except _REDIS_ERRORS as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return store.access_state(*values) if claimed else REPLAYED

    async def claim_once(self, key: str, ttl: timedelta) -> bool:
        """`RedisStore.claim_once`: SET NX with a TTL, True the first time."""
        try:
            return bool(await self.client().set(key, b"1", nx=True, px=_ms(ttl)))
        except _REDIS_ERRORS as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Close this loop's client (tests, and loops that end before the process)."""
        clients = _clients_by_loop()
        client = clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


astore = AsyncRedisStore()
