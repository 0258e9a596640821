"""Helpers for tests and demos: a django-redis cache that needs no Redis server.

    CACHES = {"default": redis_cache(os.environ.get("REDIS_URL"))}

With a URL it is an ordinary django-redis cache with short timeouts; without one it is
backed by fakeredis (`pip install jwt_sessions[embedded-redis]`), in memory, shared by
every connection of the process.
"""
from __future__ import annotations

from typing import Any

_fake_server: Any = None


def fake_server() -> Any:
    """The process-wide fakeredis server behind `redis_cache()` without a URL."""
    global _fake_server
    if _fake_server is None:
        import fakeredis

        _fake_server = fakeredis.FakeServer()
    return _fake_server


def redis_cache(url: str | None = None, timeout: float = 0.5) -> dict[str, Any]:
    """A CACHES entry for jwt_sessions: real Redis at `url`, else an embedded stand-in."""
    options: dict[str, Any] = {
        "SOCKET_CONNECT_TIMEOUT": timeout,
        "SOCKET_TIMEOUT": timeout,
        "IGNORE_EXCEPTIONS": False,
    }
    if url is None:
        import fakeredis

        url = "redis://embedded/0"
        options["CONNECTION_POOL_KWARGS"] = {"connection_class": fakeredis.FakeRedisConnection,
                                             "server": fake_server()}
    return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "OPTIONS": options}
