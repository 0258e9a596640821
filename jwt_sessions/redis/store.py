"""The store: every operation on jwt_sessions' Redis keys, as round trips planned once.

A `Trip` names the commands of one round trip and what to make of the replies, planned
knowing whether Redis is a cluster (whose pipelines refuse MGET, multi-key DEL, scripts
and PUBLISH: there a trip queues the round trips that must follow it). The sync face
(`RedisStore`) and the async face (`AsyncRedisStore`) run the same trips, reads and
writes alike, so async code cannot answer or write differently from sync code. Key
names and values come from `layout`, scripts from `scripts`. Both faces raise
StoreUnavailable; when Redis may be asked at all is `mirror`'s decision.

A caller with work to do while Redis answers (a DPoP proof's signature check) hands it
over as `meanwhile`: the trip's commands are written, that work runs, then the replies
are read, so the round trip's wait and the work overlap.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from .. import counters
from ..conf import jwt_settings
from ..lifetimes import revocation_window
from . import layout, scripts
from .client import (
    RANDOM_NODE,
    REDIS_ERRORS,
    NoScriptError,
    ResponseError,
    StoreUnavailable,
    clients,
    is_cluster,
)
from .layout import CachedSession, SessionKeys

T = TypeVar("T")
_DEL_BATCH = 1000  # keys per DEL command


@dataclass(frozen=True)
class Command:
    """One command of a trip. `script`: the EVALSHA's source, sent by EVAL to a Redis
    that lacks it. `optional`: an error reply is its reply, not the trip's failure."""

    name: str
    args: tuple
    kwargs: dict
    script: scripts.Script | None = None
    optional: bool = False


@dataclass
class Trip(Generic[T]):
    """One round trip: commands sent together, in a pipeline when there are several,
    and `answer`, which makes the result of their replies. `then`: round trips that
    follow it, in order, once it succeeded (a cluster's: what its pipelines refuse)."""

    answer: Callable[[list[Any]], T]
    commands: list[Command] = field(default_factory=list)
    then: list[Trip[Any]] = field(default_factory=list)

    def add(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.commands.append(Command(name, args, kwargs))

    def add_optional(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.commands.append(Command(name, args, kwargs, optional=True))

    def add_script(self, script: scripts.Script, keys: list[str], args: list[Any]) -> None:
        self.commands.append(Command("evalsha", (script.sha, len(keys), *keys, *args), {},
                                     script=script))


def _no_answer(replies: list[Any]) -> None:
    return None


def _as_eval(command: Command) -> Command:
    """The EVALSHA `command` as an EVAL of its script's source."""
    assert command.script is not None
    return Command("eval", (command.script.source, *command.args[1:]), {})


def _unknown_scripts(commands: list[Command], replies: list[Any]) -> list[int]:
    """Where Redis answered NOSCRIPT (restarted, flushed, or a node that never ran it)."""
    return [i for i, (command, reply) in enumerate(zip(commands, replies, strict=True))
            if command.script is not None and isinstance(reply, NoScriptError)]


def _pipeline(conn: Any, commands: list[Command]) -> Any:
    """A pipeline of `conn` (sync or asyncio) with `commands` queued, to execute."""
    pipe = conn.pipeline(transaction=False)
    for command in commands:
        getattr(pipe, command.name)(*command.args, **command.kwargs)
    return pipe


def _reply(conn: Any, connection: Any, args: tuple, options: dict) -> Any:
    """One reply read from `connection` and parsed as the sync client `conn` parses it;
    an error reply as its exception."""
    try:
        return conn.parse_response(connection, args[0], **options)
    except ResponseError as exc:
        return exc


async def _areply(conn: Any, connection: Any, args: tuple, options: dict) -> Any:
    """`_reply` for the asyncio client."""
    try:
        return await conn.parse_response(connection, args[0], **options)
    except ResponseError as exc:
        return exc


def _checked(commands: list[Command], replies: list[Any]) -> list[Any]:
    """The replies, once none that counts is an error (else that error is raised)."""
    for command, reply in zip(commands, replies, strict=True):
        if isinstance(reply, Exception) and not command.optional:
            raise reply
    return replies


def _add_counters(trip: Trip, counts: dict[str, int]) -> None:
    """Optional: a field someone garbled refuses HINCRBY, which must not fail the access
    check the counts ride with (nor count as Redis down)."""
    key = layout.stats_key()
    for name, value in counts.items():
        trip.add_optional("hincrby", key, name, value)
    trip.add_optional("pexpire", key, layout.ms(layout.STATS_TTL))


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
        trip.add_script(scripts.ACCESS_AND_CLAIM, [*keys, claim[0]], [layout.ms(claim[1])])
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


def claims_trip(claims: list[tuple[str, timedelta]]) -> Trip[None]:
    """SET NX of several (key, ttl) claims; one already made stands as it is."""
    trip: Trip[None] = Trip(_no_answer)
    for key, ttl in claims:
        _add_claim(trip, key, ttl)
    return trip


def delete_trip(key: str) -> Trip[None]:
    """Drop one key: a lifted tombstone, a claim that should not stand (its proof's
    signature proved false)."""
    trip: Trip[None] = Trip(_no_answer)
    trip.add("delete", key)
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


_INT64 = range(-(2 ** 63), 2 ** 63)


def _counted(value: Any) -> int:
    """A stats field as HINCRBY can go on counting it: a signed 64-bit integer in
    Redis's own spelling. Python's int() reads more ('1_000', ' 7', 20 digits), which
    Redis would then refuse to add to forever; ValueError for those."""
    text = value.decode("ascii") if isinstance(value, bytes) else str(value)
    number = int(text)
    if str(number) != text or number not in _INT64:
        raise ValueError(f"not a Redis integer: {text!r}")
    return number


def read_counters_trip() -> Trip[tuple[dict[str, int], list[Any]]]:
    """The shared stats hash's counts, and the fields that hold no integer (written by
    someone else): left out, so that one cannot fail the whole read."""
    def answer(replies: list[Any]) -> tuple[dict[str, int], list[Any]]:
        counts, garbled = {}, []
        for name, value in replies[0].items():
            try:
                counts[name.decode() if isinstance(name, bytes) else name] = _counted(value)
            except ValueError:  # UnicodeDecodeError too
                garbled.append(name)
        return counts, garbled

    trip = Trip(answer)
    trip.add("hgetall", layout.stats_key())
    return trip


def reset_counters_trip(names: list[Any]) -> Trip[None]:
    """Drop garbled fields of the stats hash: the next HINCRBY starts them again at 0."""
    trip: Trip[None] = Trip(_no_answer)
    trip.add("hdel", layout.stats_key(), *names)
    return trip


def indexed_trip(user_id: Any) -> Trip[set[str]]:
    trip = Trip(lambda replies: {m.decode() if isinstance(m, bytes) else m
                                 for m in replies[0]})
    trip.add("hkeys", layout.user_index_key(user_id))
    return trip



def flush_counters_trip(counts: dict[str, int]) -> Trip[None]:
    trip: Trip[None] = Trip(_no_answer)
    _add_counters(trip, counts)
    return trip


def heartbeat_trip(cluster: bool, receiver: str, beat: bytes) -> Trip[str | None]:
    """Publish a receiver's heartbeat; the server's run_id in the same round trip (None
    on a cluster, whose nodes each have their own, and where an ACL refuses INFO)."""
    channel = layout.heartbeat_channel(receiver)
    if cluster:
        trip: Trip[str | None] = Trip(_no_answer)
        trip.add("publish", channel, beat, target_nodes=RANDOM_NODE)
        return trip
    trip = Trip(lambda replies: None if isinstance(replies[1], Exception)
                else replies[1].get("run_id"))
    trip.add("publish", channel, beat)
    trip.add_optional("info", "server")  # an ACL may refuse INFO (@dangerous)
    return trip


def ping_trip() -> Trip[Any]:
    trip: Trip[Any] = Trip(_no_answer)
    trip.add("ping")
    return trip


# ------------------------------------------------------------------ planned writes
def counter_trip(name: str, amount: int, ttl: timedelta) -> Trip[int]:
    """Add to a rate-limit counter (created with `ttl`), atomically; its new value."""
    trip = Trip(lambda replies: int(replies[0]))
    trip.add_script(scripts.COUNT, [layout.counter_key(name)], [amount, layout.ms(ttl)])
    return trip


def put_session_trip(cluster: bool, keys: SessionKeys, absolute_end: int | None,
                     refresh_ttl: timedelta, access_ttl: timedelta,
                     replaces: SessionKeys | None = None) -> Trip[bool]:
    """Cache a session's current pair (unless tombstoned; False then) and index it under
    its user; `replaces`: the pair it supersedes, dropped and announced "rotated"."""
    sid = keys.session_id
    redis_keys = [layout.tombstone_key(sid), layout.session_key(sid, keys.refresh_sha256),
                  layout.access_key(sid, keys.access_jti)]
    args: list[Any] = [layout.session_value(keys.access_jti, keys.user_id, absolute_end),
                       layout.token_part(keys.refresh_sha256), layout.ms(refresh_ttl),
                       layout.ms(access_ttl)]
    if replaces is not None:
        redis_keys += layout.pair_keys(replaces)
        args += [layout.events_channel(),
                 layout.EVENT_ROTATED + layout.event_record(sid, replaces.access_jti)]
    trip = Trip(lambda replies: bool(replies[0]))
    trip.add_script(scripts.PUT, redis_keys, args)
    index: Trip[Any] = trip
    if cluster:  # a cluster pipeline refuses scripts: the index in a round trip of its own
        index = Trip(_no_answer)
        trip.then.append(index)
    index.add("hset", layout.user_index_key(keys.user_id), sid.hex, 1)
    index.add("pexpire", layout.user_index_key(keys.user_id),
              layout.ms(jwt_settings.REFRESH_TOKEN_LIFETIME))
    return trip


def rotate_trip(session_id: uuid.UUID, old_sha256: str, new_sha256: str, new_jti: str,
                refresh_ttl: timedelta, access_ttl: timedelta) -> Trip[CachedSession | None]:
    """Consume the old refresh key and install the new pair, atomically (and announce
    the superseded pair on the events channel, in the same script).

    None when Redis cannot vouch for the old token (unknown, already used, or the
    session is tombstoned): the caller must then ask the database.
    """
    def answer(replies: list[Any]) -> CachedSession | None:
        if replies[0] is None:
            return None
        try:
            return layout.parse_session_value(replies[0])
        except ValueError:  # garbled by someone who can write Redis: it vouches for nothing
            return None

    trip = Trip(answer)
    trip.add_script(scripts.ROTATE, [
        layout.tombstone_key(session_id), layout.session_key(session_id, old_sha256),
        layout.session_key(session_id, new_sha256), layout.access_key(session_id, new_jti),
    ], [layout.access_key(session_id, ""), new_jti, layout.token_part(new_sha256),
        layout.ms(refresh_ttl), layout.ms(access_ttl), layout.events_channel(),
        layout.EVENT_ROTATED + session_id.bytes])
    return trip


def forget_trip(cluster: bool, sessions: Iterable[SessionKeys],
                tombstone: bool = True) -> Trip[None]:
    """Drop sessions' keys in one round trip; tombstone them if asked. The same round
    trip announces it on the events channel: "revoked" with tombstones, else "rotated"
    (the pairs no longer stand)."""
    tombstone_ms = layout.ms(revocation_window())
    trip: Trip[None] = Trip(_no_answer)
    unindexed: dict[Any, list[str]] = {}
    doomed: list[str] = []
    records: list[bytes] = []
    for item in sessions:
        sid = item.session_id
        if tombstone:  # every tombstone is set before any key goes
            trip.add("set", layout.tombstone_key(sid), 1, px=tombstone_ms)
        doomed += layout.pair_keys(item)
        unindexed.setdefault(item.user_id, []).append(sid.hex)
        records.append(layout.event_record(sid, None if tombstone else item.access_jti))
    # Few commands, not one per key: DELs of many keys, one HDEL per user. Each command
    # costs the client more than the server (logout-all of 1000 sessions).
    _add_deletes(trip, cluster, doomed)
    for user_id, hexes in unindexed.items():
        trip.add("hdel", layout.user_index_key(user_id), *hexes)
    _announce(trip, cluster, layout.EVENT_REVOKED if tombstone else layout.EVENT_ROTATED,
              records)
    return trip


def drop_pairs_trip(cluster: bool, pairs: Iterable[SessionKeys]) -> Trip[None]:
    """Delete superseded token pairs in one round trip ("rotated"); their sessions live
    on."""
    items = list(pairs)
    trip: Trip[None] = Trip(_no_answer)
    _add_deletes(trip, cluster, [key for item in items for key in layout.pair_keys(item)])
    _announce(trip, cluster, layout.EVENT_ROTATED,
              [layout.event_record(item.session_id, item.access_jti) for item in items])
    return trip


def unindex_trip(user_id: Any, session_hexes: Iterable[str]) -> Trip[None]:
    trip: Trip[None] = Trip(_no_answer)
    members = list(session_hexes)
    if members:
        trip.add("hdel", layout.user_index_key(user_id), *members)
    return trip


def _add_deletes(trip: Trip, cluster: bool, keys: list[str]) -> None:
    """DELs of `keys`, a bounded number per command (none blocks Redis long); one key
    per DEL in a cluster, whose pipelines refuse multi-key DEL."""
    step = 1 if cluster else _DEL_BATCH
    for start in range(0, len(keys), step):
        trip.add("delete", *keys[start:start + step])


def _announce(trip: Trip, cluster: bool, kind: bytes, records: list[bytes]) -> None:
    """The event messages of `records`, last, once every write before them is done; a
    refused PUBLISH fails nothing. A cluster pipeline refuses PUBLISH: there the
    messages follow in round trips of their own (any node: classic pub/sub reaches every
    node of a cluster)."""
    channel = layout.events_channel()
    for message in layout.event_messages(kind, records):
        if cluster:
            publish: Trip[None] = Trip(_no_answer)
            publish.add_optional("publish", channel, message, target_nodes=RANDOM_NODE)
            trip.then.append(publish)
        else:
            trip.add_optional("publish", channel, message)


Plan = Callable[[bool], Trip[T]]  # the trip to make, knowing whether Redis is a cluster
Meanwhile = Callable[[], object]  # work to do while Redis answers; its result is not read


def _overlaps(conn: Any, trip: Trip[Any]) -> bool:
    """Whether `trip` can be written now and its replies read later on one pooled
    connection: one round trip (no cluster's follow-ups), on a client that borrows its
    connections from a pool."""
    return (not trip.then and not is_cluster(conn) and getattr(conn, "connection", None) is None
            and getattr(conn, "connection_pool", None) is not None)


class RedisStore:
    """The sync face: runs trips on django-redis's client; raises StoreUnavailable."""

    def run(self, plan: Plan[T], client: Any = None, meanwhile: Meanwhile | None = None) -> T:
        """Make the trip `plan` gives, on `client` (default: the cache's), running
        `meanwhile` while Redis answers."""
        try:
            conn = clients.sync() if client is None else client
            trip = plan(is_cluster(conn))
            if meanwhile is None:
                return self._send(conn, trip)
            if not _overlaps(conn, trip):
                meanwhile()
                return self._send(conn, trip)
            return self._settle(conn, trip, self._replies_meanwhile(conn, trip, meanwhile))
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    @classmethod
    def _send(cls, conn: Any, trip: Trip[T]) -> T:
        return cls._settle(conn, trip, cls._replies(conn, trip.commands))

    @staticmethod
    def _replies_meanwhile(conn: Any, trip: Trip[Any], meanwhile: Meanwhile) -> list[Any]:
        """The replies of `trip`'s commands, written on a connection of the pool before
        `meanwhile` runs and read after it, with the client's retries (as redis-py's
        pipelines do: on a failure the connection is dropped and the trip written again;
        `meanwhile` must then be safe to call twice)."""
        stack = _pipeline(conn, trip.commands).command_stack
        pool = conn.connection_pool
        connection = pool.get_connection()

        def attempt() -> list[Any]:
            connection.send_packed_command(connection.pack_commands([a for a, _ in stack]))
            try:
                meanwhile()
            finally:
                replies = [_reply(conn, connection, *command) for command in stack]
            return replies

        try:
            return connection.retry.call_with_retry(attempt,
                                                    lambda error: connection.disconnect())
        except BaseException:
            connection.disconnect()  # replies may be left unread: nobody else gets them
            raise
        finally:
            pool.release(connection)

    @classmethod
    def _settle(cls, conn: Any, trip: Trip[T], replies: list[Any]) -> T:
        """The trip's result from its replies: unknown scripts sent again by source,
        error replies raised, then the round trips that follow it made."""
        for i in _unknown_scripts(trip.commands, replies):
            replies[i] = cls._replies(conn, [_as_eval(trip.commands[i])])[0]
        result = trip.answer(_checked(trip.commands, replies))
        for follow in trip.then:
            cls._send(conn, follow)
        return result

    @staticmethod
    def _replies(conn: Any, commands: list[Command]) -> list[Any]:
        """Every command's reply, an error reply as its exception."""
        if len(commands) == 1:
            command = commands[0]
            try:
                return [getattr(conn, command.name)(*command.args, **command.kwargs)]
            except ResponseError as exc:
                return [exc]
        return _pipeline(conn, commands).execute(raise_on_error=False) if commands else []

    # --------------------------------------------------------------- reads
    def check_access(self, session_id: uuid.UUID, jti: str,
                     claim: tuple[str, timedelta] | None = None,
                     meanwhile: Meanwhile | None = None) -> str:
        """HIT, MISS or REVOKED for an access token, in one round trip that also flushes
        this process's due counters (kept for the next one if Redis cannot answer) and
        claims a DPoP proof's `claim` (REPLAYED if claimed before)."""
        due = counters.take_due()
        try:
            return self.run(
                lambda cluster: access_check_trip(cluster, session_id, jti, due, claim),
                meanwhile=meanwhile)
        except StoreUnavailable:
            counters.give_back(due)
            raise

    def claim_once(self, key: str, ttl: timedelta, meanwhile: Meanwhile | None = None) -> bool:
        return self.run(lambda cluster: claim_once_trip(key, ttl), meanwhile=meanwhile)

    def claim_all(self, claims: list[tuple[str, timedelta]]) -> None:
        self.run(lambda cluster: claims_trip(claims))

    def unclaim(self, key: str) -> None:
        self.run(lambda cluster: delete_trip(key))

    def check_accesses(self, tokens: list[tuple[uuid.UUID, str]]) -> list[str]:
        """`check_access` of several access tokens in one round trip."""
        return self.run(lambda cluster: access_checks_trip(cluster, tokens))

    def read_counters(self) -> dict[str, int]:
        """The shared counts; a garbled field is reset, so it counts again."""
        counts, garbled = self.run(lambda cluster: read_counters_trip())
        if garbled:
            self.run(lambda cluster: reset_counters_trip(garbled))
        return counts

    def indexed_session_ids(self, user_id: Any) -> set[str]:
        return self.run(lambda cluster: indexed_trip(user_id))

    def ping(self) -> None:
        """Raises StoreUnavailable unless Redis answers."""
        self.run(lambda cluster: ping_trip())

    # --------------------------------------------------------------- writes
    def publish_heartbeat(self, client: Any, receiver: str, beat: bytes) -> str | None:
        """Publish a receiver's heartbeat through `client`; the server's run_id."""
        return self.run(lambda cluster: heartbeat_trip(cluster, receiver, beat), client)

    def flush_counters(self, counts: dict[str, int]) -> None:
        self.run(lambda cluster: flush_counters_trip(counts))

    def add_to_counter(self, name: str, amount: int, ttl: timedelta) -> int:
        return self.run(lambda cluster: counter_trip(name, amount, ttl))

    def put_session(self, keys: SessionKeys, absolute_end: int | None,
                    refresh_ttl: timedelta, access_ttl: timedelta,
                    replaces: SessionKeys | None = None) -> bool:
        return self.run(lambda cluster: put_session_trip(
            cluster, keys, absolute_end, refresh_ttl, access_ttl, replaces))

    def rotate(self, session_id: uuid.UUID, old_sha256: str, new_sha256: str, new_jti: str,
               refresh_ttl: timedelta, access_ttl: timedelta) -> CachedSession | None:
        return self.run(lambda cluster: rotate_trip(
            session_id, old_sha256, new_sha256, new_jti, refresh_ttl, access_ttl))

    def forget(self, sessions: Iterable[SessionKeys], tombstone: bool = True) -> None:
        self.run(lambda cluster: forget_trip(cluster, sessions, tombstone))

    def drop_pairs(self, pairs: Iterable[SessionKeys]) -> None:
        self.run(lambda cluster: drop_pairs_trip(cluster, pairs))

    def lift_tombstone(self, session_id: uuid.UUID) -> None:
        self.run(lambda cluster: delete_trip(layout.tombstone_key(session_id)))

    def unindex(self, user_id: Any, session_hexes: Iterable[str]) -> None:
        self.run(lambda cluster: unindex_trip(user_id, session_hexes))


class AsyncRedisStore:
    """The async face: runs the same trips on this event loop's asyncio client, so that
    async code never blocks its loop; raises StoreUnavailable. Its methods are the sync
    face's, awaited."""

    async def run(self, plan: Plan[T], meanwhile: Meanwhile | None = None) -> T:
        try:
            conn = clients.for_this_loop()
            trip = plan(is_cluster(conn))
            if meanwhile is None:
                return await self._send(conn, trip)
            if not _overlaps(conn, trip):
                meanwhile()
                return await self._send(conn, trip)
            return await self._settle(conn, trip,
                                      await self._replies_meanwhile(conn, trip, meanwhile))
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    @classmethod
    async def _send(cls, conn: Any, trip: Trip[T]) -> T:
        return await cls._settle(conn, trip, await cls._replies(conn, trip.commands))

    @staticmethod
    async def _replies_meanwhile(conn: Any, trip: Trip[Any], meanwhile: Meanwhile) -> list[Any]:
        stack = _pipeline(conn, trip.commands).command_stack
        pool = conn.connection_pool
        connection = await pool.get_connection()

        async def attempt() -> list[Any]:
            await connection.send_packed_command(
                connection.pack_commands([a for a, _ in stack]))
            try:
                meanwhile()
            finally:
                replies = [await _areply(conn, connection, *command) for command in stack]
            return replies

        async def dropped(error: Exception) -> None:
            await connection.disconnect()

        try:
            return await connection.retry.call_with_retry(attempt, dropped)
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)

    @classmethod
    async def _settle(cls, conn: Any, trip: Trip[T], replies: list[Any]) -> T:
        for i in _unknown_scripts(trip.commands, replies):
            replies[i] = (await cls._replies(conn, [_as_eval(trip.commands[i])]))[0]
        result = trip.answer(_checked(trip.commands, replies))
        for follow in trip.then:
            await cls._send(conn, follow)
        return result

    @staticmethod
    async def _replies(conn: Any, commands: list[Command]) -> list[Any]:
        if len(commands) == 1:
            command = commands[0]
            try:
                return [await getattr(conn, command.name)(*command.args, **command.kwargs)]
            except ResponseError as exc:
                return [exc]
        return await _pipeline(conn, commands).execute(raise_on_error=False) if commands else []

    # --------------------------------------------------------------- reads
    async def check_access(self, session_id: uuid.UUID, jti: str,
                           claim: tuple[str, timedelta] | None = None,
                           meanwhile: Meanwhile | None = None) -> str:
        due = counters.take_due()
        try:
            return await self.run(
                lambda cluster: access_check_trip(cluster, session_id, jti, due, claim),
                meanwhile=meanwhile)
        except StoreUnavailable:
            counters.give_back(due)
            raise

    async def claim_once(self, key: str, ttl: timedelta,
                         meanwhile: Meanwhile | None = None) -> bool:
        return await self.run(lambda cluster: claim_once_trip(key, ttl), meanwhile=meanwhile)

    async def claim_all(self, claims: list[tuple[str, timedelta]]) -> None:
        await self.run(lambda cluster: claims_trip(claims))

    async def unclaim(self, key: str) -> None:
        await self.run(lambda cluster: delete_trip(key))

    async def check_accesses(self, tokens: list[tuple[uuid.UUID, str]]) -> list[str]:
        return await self.run(lambda cluster: access_checks_trip(cluster, tokens))

    async def read_counters(self) -> dict[str, int]:
        """The shared counts; a garbled field is reset, so it counts again."""
        counts, garbled = await self.run(lambda cluster: read_counters_trip())
        if garbled:
            await self.run(lambda cluster: reset_counters_trip(garbled))
        return counts

    async def indexed_session_ids(self, user_id: Any) -> set[str]:
        return await self.run(lambda cluster: indexed_trip(user_id))

    async def ping(self) -> None:
        await self.run(lambda cluster: ping_trip())

    # --------------------------------------------------------------- writes
    async def flush_counters(self, counts: dict[str, int]) -> None:
        await self.run(lambda cluster: flush_counters_trip(counts))

    async def add_to_counter(self, name: str, amount: int, ttl: timedelta) -> int:
        return await self.run(lambda cluster: counter_trip(name, amount, ttl))

    async def put_session(self, keys: SessionKeys, absolute_end: int | None,
                          refresh_ttl: timedelta, access_ttl: timedelta,
                          replaces: SessionKeys | None = None) -> bool:
        return await self.run(lambda cluster: put_session_trip(
            cluster, keys, absolute_end, refresh_ttl, access_ttl, replaces))

    async def rotate(self, session_id: uuid.UUID, old_sha256: str, new_sha256: str,
                     new_jti: str, refresh_ttl: timedelta,
                     access_ttl: timedelta) -> CachedSession | None:
        return await self.run(lambda cluster: rotate_trip(
            session_id, old_sha256, new_sha256, new_jti, refresh_ttl, access_ttl))

    async def forget(self, sessions: Iterable[SessionKeys], tombstone: bool = True) -> None:
        await self.run(lambda cluster: forget_trip(cluster, sessions, tombstone))

    async def drop_pairs(self, pairs: Iterable[SessionKeys]) -> None:
        await self.run(lambda cluster: drop_pairs_trip(cluster, pairs))

    async def lift_tombstone(self, session_id: uuid.UUID) -> None:
        await self.run(lambda cluster: delete_trip(layout.tombstone_key(session_id)))

    async def unindex(self, user_id: Any, session_hexes: Iterable[str]) -> None:
        await self.run(lambda cluster: unindex_trip(user_id, session_hexes))

    async def aclose(self) -> None:
        """Close this loop's client (tests, and loops that end before the process)."""
        await clients.aclose()


store = RedisStore()
astore = AsyncRedisStore()
