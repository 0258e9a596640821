"""The Redis wing: the only part of jwt_sessions that imports redis-py.

Floors, lowest first (each imports only those below it):

- `layout`: key names, values and the events wire format, as pure functions;
  `scripts`: the Lua scripts.
- `cluster`: the Redis Cluster connection factory for django-redis;
  `client`: every client (sync, asyncio, pub/sub) built from the cache alias.
- `store`: each round trip planned once, run by a sync and an async face.
- `events`: the revocation-events receiver; `local_cache`: LOCAL_CACHE, trusted while
  the events are.
- `mirror`: the door: guards every call with the circuit breaker, replays what Redis
  missed, maps Session rows to their keys.
"""
