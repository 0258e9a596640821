"""The store: every operation on jwt_sessions' Redis keys, as round trips planned once.

A `Trip` names the commands of one round trip and what to make of the replies, planned
knowing whether Redis is a cluster (whose pipelines refuse MGET, scripts and PUBLISH).
The sync face (`RedisStore`) and the async face (`AsyncRedisStore`) run the same trips,
so the access check cannot answer differently from async code. The writes (scripts,
and pipelines that announce themselves on the events channel) run from sync code only.
Key names and values come from `layout`, scripts from `scripts`. Both faces raise
StoreUnavailable; when Redis may be asked at all is `mirror`'s decision.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from .. import counters
from ..conf import cached_per_settings, jwt_settings
from ..lifetimes import revocation_window
from . import layout, scripts
from .client import RANDOM_NODE, REDIS_ERRORS, ResponseError, StoreUnavailable, clients, is_cluster
from .layout import CachedSession, SessionKeys

T = TypeVar("T")
_DEL_BATCH = 1000  # keys per DEL command


@dataclass
class Trip(Generic[T]):
    """One round trip: commands (name, args, kwargs) sent together, in a pipeline when
    there are several, and `answer`, which makes the result of their replies."""

    answer: Callable[[list[Any]], T]
    commands: list[tuple[str, tuple, dict]] = field(default_factory=list)

    def add(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.commands.append((name, args, kwargs))


def _add_counters(trip: Trip, counts: dict[str, int]) -> None:
    key = layout.stats_key()
    for name, value in counts.items():
        trip.add("hincrby", key, name, value)
    trip.add("pexpire", key, layout.ms(layout.STATS_TTL))


# ------------------------------------------------------------------ planned trips
def access_check_trip(cluster: bool, session_id: uuid.UUID, jti: str,
                      counts: dict[str, int] | None,
                      claim: tuple[str, timedelta] | None = None) -> Trip[str]:
    """HIT, MISS or REVOKED for an access token, with `counts` flushed into the shared
    stats hash in the same round trip. The tombstone is read with the access key (same
    hash tag, same slot), so a revoked session's tokens are refused without SQL. `claim`
    (key, ttl), a DPoP proof's, is claimed in that round trip too (SET NX, in the
    session's slot; a script outside a cluster): REPLAYED if it was claimed before."""
    keys = layout.access_check_keys(session_id, jti)
    if claim is not None and not cluster:  # one script: one reply to wait for
        trip = Trip(lambda replies: layout.access_state(*replies[0][:2]) if replies[0][2]
                    else layout.REPLAYED)
        trip.add("eval", scripts.ACCESS_AND_CLAIM, 3, *keys, claim[0], layout.ms(claim[1]))
        if counts:
            _add_counters(trip, counts)
        return trip
    if cluster and (counts or claim):  # a cluster pipeline refuses MGET and scripts
        read, state = 2, lambda replies: layout.access_state(replies[0], replies[1])
        trip = Trip(state)
        trip.add("get", keys[0])
        trip.add("get", keys[1])
    else:
        read, state = 1, lambda replies: layout.access_state(*replies[0])
        trip = Trip(state)
        trip.add("mget", keys)
    if claim is not None:
        trip.answer = lambda replies: state(replies) if replies[read] else layout.REPLAYED
        _add_claim(trip, *claim)
    if counts:
        _add_counters(trip, counts)
    return trip


def _add_claim(trip: Trip, key: str, ttl: timedelta) -> None:
    trip.add("set", key, b"1", nx=True, px=layout.ms(ttl))


def claim_once_trip(key: str, ttl: timedelta) -> Trip[bool]:
    """SET NX with a TTL: True the first time a key is claimed, False after."""
    trip = Trip(lambda replies: bool(replies[0]))
    _add_claim(trip, key, ttl)
    return trip


def access_checks_trip(cluster: bool, tokens: list[tuple[uuid.UUID, str]]) -> Trip[list[str]]:
    """`access_check_trip` of several access tokens, (session id, jti) each, in one round
    trip: one MGET of all their keys, or on a cluster (where keys of different hash tags
    live apart) a pipeline of GETs."""
    keys = [key for session_id, jti in tokens
            for key in layout.access_check_keys(session_id, jti)]

    def states(values: list[Any]) -> list[str]:
        return [layout.access_state(values[i], values[i + 1])
                for i in range(0, len(values), 2)]

    if cluster:
        trip = Trip(states)
        for key in keys:
            trip.add("get", key)
    else:
        trip = Trip(lambda replies: states(replies[0]))
        trip.add("mget", keys)
    return trip


def flush_counters_trip(counts: dict[str, int]) -> Trip[None]:
    trip: Trip[None] = Trip(lambda replies: None)
    _add_counters(trip, counts)
    return trip


def read_counters_trip() -> Trip[dict[str, int]]:
    def answer(replies: list[Any]) -> dict[str, int]:
        return {(k.decode() if isinstance(k, bytes) else k): int(v)
                for k, v in replies[0].items()}

    trip = Trip(answer)
    trip.add("hgetall", layout.stats_key())
    return trip


def indexed_trip(user_id: Any) -> Trip[set[str]]:
    trip = Trip(lambda replies: {m.decode() if isinstance(m, bytes) else m
                                 for m in replies[0]})
    trip.add("hkeys", layout.user_index_key(user_id))
    return trip


@cached_per_settings
def _registered_script(conn: Any, source: str) -> Any:
    """A script registered once per client (django-redis keeps one client per alias; a
    cluster client too): redis-py then runs it by SHA and reloads it if Redis forgot."""
    return conn.register_script(source)


Plan = Callable[[bool], Trip[T]]  # the trip to make, knowing whether Redis is a cluster


class RedisStore:
    """The sync face: runs trips on django-redis's client; raises StoreUnavailable."""

    def run(self, plan: Plan[T]) -> T:
        return self._run(lambda conn: self._send(conn, plan(is_cluster(conn))))

    @staticmethod
    def _send(conn: Any, trip: Trip[T]) -> T:
        if len(trip.commands) == 1:
            name, args, kwargs = trip.commands[0]
            return trip.answer([getattr(conn, name)(*args, **kwargs)])
        pipe = conn.pipeline(transaction=False)
        for name, args, kwargs in trip.commands:
            getattr(pipe, name)(*args, **kwargs)
        return trip.answer(pipe.execute())

    @staticmethod
    def _run(call: Callable[[Any], T], client: Any = None) -> T:
        try:
            return call(clients.sync() if client is None else client)
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    # --------------------------------------------------------------- reads
    def check_access(self, session_id: uuid.UUID, jti: str,
                     claim: tuple[str, timedelta] | None = None) -> str:
        """HIT, MISS or REVOKED for an access token, in one round trip that also flushes
        this process's due counters (kept for the next one if Redis cannot answer) and
        claims a DPoP proof's `claim` (REPLAYED if claimed before)."""
        due = counters.take_due()
        try:
            return self.run(
                lambda cluster: access_check_trip(cluster, session_id, jti, due, claim))
        except StoreUnavailable:
            counters.give_back(due)
            raise

    def claim_once(self, key: str, ttl: timedelta) -> bool:
        return self.run(lambda cluster: claim_once_trip(key, ttl))

    def check_accesses(self, tokens: list[tuple[uuid.UUID, str]]) -> list[str]:
        """`check_access` of several access tokens in one round trip."""
        return self.run(lambda cluster: access_checks_trip(cluster, tokens))

    def flush_counters(self, counts: dict[str, int]) -> None:
        self.run(lambda cluster: flush_counters_trip(counts))

    def read_counters(self) -> dict[str, int]:
        return self.run(lambda cluster: read_counters_trip())

    def indexed_session_ids(self, user_id: Any) -> set[str]:
        return self.run(lambda cluster: indexed_trip(user_id))

    def publish_heartbeat(self, client: Any, receiver: str, beat: bytes) -> str | None:
        """Publish a receiver's heartbeat through `client`; returns the server's run_id
        in the same round trip (None on a cluster, whose nodes each have their own)."""
        channel = layout.heartbeat_channel(receiver)

        def call(conn: Any) -> str | None:
            if is_cluster(conn):
                conn.publish(channel, beat, target_nodes=RANDOM_NODE)
                return None
            pipe = conn.pipeline(transaction=False)
            pipe.publish(channel, beat)
            pipe.info("server")  # an ACL may refuse INFO (@dangerous): then no run_id
            published, info = pipe.execute(raise_on_error=False)
            if isinstance(published, Exception):
                raise published
            return None if isinstance(info, Exception) else info.get("run_id")

        return self._run(call, client)

    # --------------------------------------------------------------- writes
    def add_to_counter(self, name: str, amount: int, ttl: timedelta) -> int:
        """Atomically add to a rate-limit counter (created with `ttl`); its new value."""
        key = layout.counter_key(name)
        return int(self._run(lambda conn: _registered_script(conn, scripts.COUNT)(
            keys=[key], args=[amount, layout.ms(ttl)], client=conn)))

    def put_session(self, keys: SessionKeys, absolute_end: int | None,
                    refresh_ttl: timedelta, access_ttl: timedelta,
                    replaces: SessionKeys | None = None) -> bool:
        """Cache a session's current pair (unless tombstoned); False when refused."""
        sid = keys.session_id
        redis_keys = [layout.tombstone_key(sid), layout.session_key(sid, keys.refresh_sha256),
                      layout.access_key(sid, keys.access_jti)]
        if replaces is not None:
            redis_keys += layout.pair_keys(replaces)
        args = [layout.session_value(keys.access_jti, keys.user_id, absolute_end),
                layout.token_part(keys.refresh_sha256), layout.ms(refresh_ttl),
                layout.ms(access_ttl)]
        if replaces is not None:
            args += [layout.events_channel(),
                     layout.EVENT_ROTATED + layout.event_record(sid, replaces.access_jti)]
        index = layout.user_index_key(keys.user_id)

        def call(conn: Any) -> Any:
            put = _registered_script(conn, scripts.PUT)
            pipe = conn.pipeline(transaction=False)
            if is_cluster(conn):
                # Cluster pipelines refuse scripts: one more round trip there.
                stored = put(keys=redis_keys, args=args, client=conn)
            else:
                put(keys=redis_keys, args=args, client=pipe)
            pipe.hset(index, sid.hex, 1)
            pipe.pexpire(index, layout.ms(jwt_settings.REFRESH_TOKEN_LIFETIME))
            results = pipe.execute()
            return stored if is_cluster(conn) else results[0]

        return bool(self._run(call))

    def rotate(self, session_id: uuid.UUID, old_sha256: str, new_sha256: str, new_jti: str,
               refresh_ttl: timedelta, access_ttl: timedelta) -> CachedSession | None:
        """Consume the old refresh key and install the new pair, atomically (and announce
        the superseded pair on the events channel, in the same script).

        None when Redis cannot vouch for the old token (unknown, already used, or the
        session is tombstoned): the caller must then ask the database.
        """
        keys = [layout.tombstone_key(session_id), layout.session_key(session_id, old_sha256),
                layout.session_key(session_id, new_sha256),
                layout.access_key(session_id, new_jti)]
        args = [layout.access_key(session_id, ""), new_jti, layout.token_part(new_sha256),
                layout.ms(refresh_ttl), layout.ms(access_ttl), layout.events_channel(),
                layout.EVENT_ROTATED + session_id.bytes]
        raw = self._run(lambda conn: _registered_script(conn, scripts.ROTATE)(
            keys=keys, args=args, client=conn))
        if raw is None:
            return None
        try:
            return layout.parse_session_value(raw)
        except ValueError:  # garbled by someone who can write Redis: it vouches for nothing
            return None

    def forget(self, sessions: Iterable[SessionKeys], tombstone: bool = True) -> None:
        """Drop sessions' keys in one pipelined round trip; tombstone them if asked.

        The same round trip announces it on the events channel: "revoked" with
        tombstones, else "rotated" (the pairs no longer stand)."""
        tombstone_ms = layout.ms(revocation_window())

        def call(conn: Any) -> None:
            pipe = conn.pipeline(transaction=False)
            unindexed: dict[Any, list[str]] = {}
            doomed: list[str] = []
            records: list[bytes] = []
            for item in sessions:
                sid = item.session_id
                if tombstone:  # every tombstone is set before any key goes
                    pipe.set(layout.tombstone_key(sid), 1, px=tombstone_ms)
                doomed += layout.pair_keys(item)
                unindexed.setdefault(item.user_id, []).append(sid.hex)
                records.append(layout.event_record(sid, None if tombstone else item.access_jti))
            # Few commands, not one per key: DELs of many keys, one HDEL per user. Each
            # command costs the client more than the server (logout-all of 1000 sessions).
            self._delete(conn, pipe, doomed)
            for user_id, hexes in unindexed.items():
                pipe.hdel(layout.user_index_key(user_id), *hexes)
            if pipe:
                self._execute_and_announce(
                    conn, pipe, layout.EVENT_REVOKED if tombstone else layout.EVENT_ROTATED,
                    records)

        self._run(call)

    def ping(self) -> None:
        """Raises StoreUnavailable unless Redis answers."""
        self._run(lambda conn: conn.ping())

    def lift_tombstone(self, session_id: uuid.UUID) -> None:
        self._run(lambda conn: conn.delete(layout.tombstone_key(session_id)))

    def drop_pairs(self, pairs: Iterable[SessionKeys]) -> None:
        """Delete superseded token pairs in one round trip ("rotated"); their sessions
        live on."""
        def call(conn: Any) -> None:
            pipe = conn.pipeline(transaction=False)
            items = list(pairs)
            self._delete(conn, pipe, [key for item in items for key in layout.pair_keys(item)])
            self._execute_and_announce(conn, pipe, layout.EVENT_ROTATED, [
                layout.event_record(item.session_id, item.access_jti) for item in items])

        self._run(call)

    def unindex(self, user_id: Any, session_hexes: Iterable[str]) -> None:
        members = list(session_hexes)
        if members:
            self._run(lambda conn: conn.hdel(layout.user_index_key(user_id), *members))

    @staticmethod
    def _execute_and_announce(conn: Any, pipe: Any, kind: bytes, records: list[bytes]) -> None:
        """Run `pipe` with the event messages last, once every write before them is done.
        A cluster pipeline refuses PUBLISH: there the messages follow in their own round
        trip (any node: classic pub/sub reaches every node of a cluster)."""
        messages = layout.event_messages(kind, records)
        channel = layout.events_channel()
        if is_cluster(conn):
            pipe.execute()
            for message in messages:
                try:
                    conn.publish(channel, message, target_nodes=RANDOM_NODE)
                except ResponseError:
                    pass
            return
        for message in messages:
            pipe.publish(channel, message)
        results = pipe.execute(raise_on_error=False)
        for result in results[:len(results) - len(messages)]:
            if isinstance(result, Exception):
                raise result

    @staticmethod
    def _delete(conn: Any, pipe: Any, keys: list[str]) -> None:
        """Queue DELs of `keys`, a bounded number per command (none blocks Redis long);
        one key per DEL in a cluster, whose pipelines refuse multi-key DEL."""
        step = 1 if is_cluster(conn) else _DEL_BATCH
        for start in range(0, len(keys), step):
            pipe.delete(*keys[start:start + step])


class AsyncRedisStore:
    """The async face: runs the same trips on this event loop's asyncio client, so that
    async code never blocks its loop; raises StoreUnavailable."""

    async def run(self, plan: Plan[T]) -> T:
        try:
            conn = clients.for_this_loop()
            return await self._send(conn, plan(is_cluster(conn)))
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    @staticmethod
    async def _send(conn: Any, trip: Trip[T]) -> T:
        if len(trip.commands) == 1:
            name, args, kwargs = trip.commands[0]
            return trip.answer([await getattr(conn, name)(*args, **kwargs)])
        pipe = conn.pipeline(transaction=False)
        for name, args, kwargs in trip.commands:
            getattr(pipe, name)(*args, **kwargs)
        return trip.answer(await pipe.execute())

    async def check_access(self, session_id: uuid.UUID, jti: str,
                           claim: tuple[str, timedelta] | None = None) -> str:
        """`RedisStore.check_access` without blocking the event loop."""
        due = counters.take_due()
        try:
            return await self.run(
                lambda cluster: access_check_trip(cluster, session_id, jti, due, claim))
        except StoreUnavailable:
            counters.give_back(due)
            raise

    async def claim_once(self, key: str, ttl: timedelta) -> bool:
        return await self.run(lambda cluster: claim_once_trip(key, ttl))

    async def aclose(self) -> None:
        """Close this loop's client (tests, and loops that end before the process)."""
        await clients.aclose()


store = RedisStore()
astore = AsyncRedisStore()
