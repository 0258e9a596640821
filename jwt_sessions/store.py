"""Redis: the only module that speaks to it. Key names, TTLs and atomic scripts.

Layout (P = REDIS_KEY_PREFIX, s = session id, base64url; t = the first 128 bits of
SHA-256(refresh token), base64url; u = user pk):

    P{s}:s:<t>         "<access jti>|<user pk>|<absolute end, epoch or ->"
                       TTL = refresh expiry
    P{s}:a:<jti>       "<t>": the access token maps back to its session key
                       TTL = access expiry
    P{s}:r             tombstone: no script rewrites the session  TTL = access lifetime
    P{u:u}:sessions    hash {session id hex: 1} of the user's sessions
                       TTL = refresh lifetime
    P{stats}           hash of counters (jwt_sessions.stats)
    Pt:<name>          a throttle counter   TTL = its window

Pub/sub channels (jwt_sessions.events): `Pev` carries every revocation and rotation,
published in the same round trip as the change itself (inside the script or pipeline);
`Phb:<receiver>` is one receiver's heartbeat. An event message is a kind byte (R: revoked,
O: a pair superseded) and records of session id (16 bytes), jti length (1 byte), jti.
A PUBLISH that fails (an ACL without the channels) never fails the change it announces:
receivers then cannot prove their subscription, and no local cache is trusted.

Names are short and binary parts base64url because every byte is paid per active
session (see docs/how-it-works.md for the measured sizes); 128 bits of the SHA-256 name a
token uniquely within its session. The user index is a hash, not a set: small hashes are
stored compactly (listpack), small sets of strings are not before Redis 7.2.

Every key of one session shares the hash tag `{s}`, so each script touches one Redis
Cluster slot. A tombstone outlives every access token of its session: while it exists
no script writes the session's keys again, which closes the races where a revocation
and a refresh or rehydration cross each other. The access-token check reads it in the
same MGET as the access key, so a revoked session's tokens cost no SQL.
"""
from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django_redis import get_redis_connection
from redis.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from .conf import cached_per_settings, jwt_settings, revocation_window

# What Redis says of an access token: live, not known (ask the database), or its session
# revoked (a tombstone: refused with no SQL).
HIT, MISS, REVOKED = "hit", "miss", "revoked"
# A cluster with no reachable node raises RedisClusterException, which is no RedisError.
# OSError: a socket failure that redis-py did not wrap is the same outage.
_REDIS_ERRORS = (RedisError, RedisClusterException, OSError)
_DEL_BATCH = 1000  # keys per DEL command
EVENT_REVOKED, EVENT_ROTATED = b"R", b"O"
_EVENT_RECORDS = 1000  # records per event message (~20 KB at most)


class StoreUnavailable(Exception):
    """Redis could not be reached (or answered with an error)."""


@dataclass(frozen=True)
class CachedSession:
    """What Redis knows of a session's current refresh token."""

    access_jti: str
    user_id: str
    absolute_end: int | None


@dataclass(frozen=True)
class SessionKeys:
    """The identifiers needed to find (and drop) one session's keys."""

    session_id: uuid.UUID
    refresh_sha256: str
    access_jti: str
    user_id: Any


# Sets a session's current pair unless the session is tombstoned; drops the keys of the
# pair it replaces, if any. KEYS: tombstone, new session, new access, [old session,
# old access]. ARGV: session value, access value, session ttl, access ttl.
# A rate-limit counter: add, and give a new counter its TTL, in one atomic step (a
# separate EXPIRE could be lost, leaving a counter that never resets).
# KEYS: counter. ARGV: amount, ttl (ms).
_COUNT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
"""

# ARGV[5], ARGV[6] (with old keys): the events channel and the "rotated" message.
_PUT = """
for i = 4, #KEYS do redis.call('DEL', KEYS[i]) end
if ARGV[6] then redis.pcall('PUBLISH', ARGV[5], ARGV[6]) end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[4])
return 1
"""

# Rotation on a Redis hit: atomically consume the old refresh key and install the new
# pair, so of many concurrent callers exactly one sees the old value. The new session
# value keeps the old one's user and absolute end, and neither new key's TTL passes
# that end.
# KEYS: tombstone, old session, new session, new access.
# ARGV: access key prefix, new jti, new token part, session ttl (ms), access ttl (ms),
# events channel, "rotated" message head (kind + session id; the old jti is appended).
_ROTATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local old = redis.call('GET', KEYS[2])
if not old then return false end
local sep = string.find(old, '|', 1, true)
local rest = string.sub(old, sep)
local ttl = tonumber(ARGV[4])
local access_ttl = tonumber(ARGV[5])
local last = string.match(rest, '|([^|]*)$')
if last ~= '-' then
  local now = redis.call('TIME')
  local left = (tonumber(last) - tonumber(now[1])) * 1000
  if left <= 0 then return false end
  if left < ttl then ttl = left end
  if left < access_ttl then access_ttl = left end
end
local old_jti = string.sub(old, 1, sep - 1)
redis.call('DEL', KEYS[2])
redis.call('DEL', ARGV[1] .. old_jti)
redis.call('SET', KEYS[3], ARGV[2] .. rest, 'PX', ttl)
redis.call('SET', KEYS[4], ARGV[3], 'PX', access_ttl)
redis.pcall('PUBLISH', ARGV[6], ARGV[7] .. string.char(#old_jti) .. old_jti)
return old
"""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _ms(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() * 1000))


@cached_per_settings
def _registered_script(conn: Any, source: str) -> Any:
    """A script registered once per client (django-redis keeps one client per alias; a
    cluster client too): redis-py then runs it by SHA and reloads it if Redis forgot."""
    return conn.register_script(source)


class RedisStore:
    """Plain functions over one django-redis connection; raises StoreUnavailable."""

    def connection(self):
        try:
            return get_redis_connection(jwt_settings.CACHE_ALIAS)
        except (*_REDIS_ERRORS, NotImplementedError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    # --------------------------------------------------------------- key names
    def _tag(self, session_id: uuid.UUID) -> str:
        return f"{jwt_settings.REDIS_KEY_PREFIX}{{{_b64(session_id.bytes)}}}"

    @staticmethod
    def token_part(refresh_sha256: str) -> str:
        """What names a refresh token in Redis: 128 bits of its SHA-256 (hex), base64url."""
        return _b64(bytes.fromhex(refresh_sha256[:32]))

    def session_key(self, session_id: uuid.UUID, refresh_sha256: str) -> str:
        return f"{self._tag(session_id)}:s:{self.token_part(refresh_sha256)}"

    def access_key(self, session_id: uuid.UUID, jti: str) -> str:
        return f"{self._tag(session_id)}:a:{jti}"

    def tombstone_key(self, session_id: uuid.UUID) -> str:
        return f"{self._tag(session_id)}:r"

    def user_index_key(self, user_id: Any) -> str:
        return f"{jwt_settings.REDIS_KEY_PREFIX}{{u:{user_id}}}:sessions"

    def stats_key(self) -> str:
        return f"{jwt_settings.REDIS_KEY_PREFIX}{{stats}}"

    def counter_key(self, name: str) -> str:
        return f"{jwt_settings.REDIS_KEY_PREFIX}t:{name}"

    def events_channel(self) -> str:
        return f"{jwt_settings.REDIS_KEY_PREFIX}ev"

    def heartbeat_channel(self, receiver: str) -> str:
        return f"{jwt_settings.REDIS_KEY_PREFIX}hb:{receiver}"

    # --------------------------------------------------------------- event messages
    @staticmethod
    def event_record(session_id: uuid.UUID, jti: str | None = None) -> bytes:
        """One session in an event message; a jti too long for its length byte is left
        out (consumers then drop the whole session, which is always safe)."""
        raw = (jti or "").encode()
        if len(raw) > 255:
            raw = b""
        return session_id.bytes + bytes([len(raw)]) + raw

    def _event_messages(self, kind: bytes, records: list[bytes]) -> list[bytes]:
        return [kind + b"".join(records[start:start + _EVENT_RECORDS])
                for start in range(0, len(records), _EVENT_RECORDS)]

    @staticmethod
    def parse_event(message: bytes) -> tuple[bytes, list[tuple[uuid.UUID, str | None]]]:
        """(kind, [(session id, jti or None)]) of an event message; ValueError if garbled."""
        if not message or message[:1] not in (EVENT_REVOKED, EVENT_ROTATED):
            raise ValueError("unknown event kind")
        records, at = [], 1
        while at < len(message):
            if at + 17 > len(message):
                raise ValueError("truncated event record")
            session_id = uuid.UUID(bytes=message[at:at + 16])
            end = at + 17 + message[at + 16]
            if end > len(message):
                raise ValueError("truncated jti")
            records.append((session_id, message[at + 17:end].decode() or None))
            at = end
        return message[:1], records

    def publish_heartbeat(self, client, receiver: str, beat: bytes) -> str | None:
        """Publish a receiver's heartbeat through `client`; returns the server's run_id
        in the same round trip (None on a cluster, whose nodes each have their own)."""
        def call(conn):
            if isinstance(conn, RedisCluster):
                conn.publish(self.heartbeat_channel(receiver), beat,
                             target_nodes=RedisCluster.RANDOM)
                return None
            pipe = conn.pipeline(transaction=False)
            pipe.publish(self.heartbeat_channel(receiver), beat)
            pipe.info("server")  # an ACL may refuse INFO (@dangerous): then no run_id
            published, info = pipe.execute(raise_on_error=False)
            if isinstance(published, Exception):
                raise published
            return None if isinstance(info, Exception) else info.get("run_id")

        return self._run(call, client)

    # --------------------------------------------------------------- helpers
    def _run(self, call, client=None):
        try:
            return call(self.connection() if client is None else client)
        except _REDIS_ERRORS as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    @staticmethod
    def _script(conn, source: str):
        return _registered_script(conn, source)

    @staticmethod
    def session_value(access_jti: str, user_id: Any, absolute_end: int | None) -> str:
        return f"{access_jti}|{user_id}|{absolute_end if absolute_end is not None else '-'}"

    @staticmethod
    def _parse_session_value(raw: bytes | str) -> CachedSession:
        text = raw.decode() if isinstance(raw, bytes) else raw
        # "<jti>|<user id>|<end>": a jti and an end never hold "|", a user id may.
        jti, rest = text.split("|", 1)
        user_id, end = rest.rsplit("|", 1)
        return CachedSession(jti, user_id, None if end == "-" else int(end))

    # --------------------------------------------------------------- reads
    def check_access(self, session_id: uuid.UUID, jti: str,
                     counters: dict[str, int] | None = None) -> str:
        """HIT, MISS or REVOKED for an access token: one MGET, one round trip.

        The tombstone is read with the access key (same hash tag, same slot), so a
        revoked session's tokens are refused without asking the database. `counters`,
        when given, are flushed into the shared stats hash in the same round trip (a
        pipeline), so statistics never cost an extra one.
        """
        keys = self.access_check_keys(session_id, jti)

        def call(conn):
            if not counters:
                return conn.mget(keys)
            pipe = conn.pipeline(transaction=False)
            if isinstance(pipe, ClusterPipeline):  # which refuses MGET: two GETs, one slot
                pipe.get(keys[0])
                pipe.get(keys[1])
                self._add_counters(pipe, counters)
                return pipe.execute()[:2]
            pipe.mget(keys)
            self._add_counters(pipe, counters)
            return pipe.execute()[0]

        return self.access_state(*self._run(call))

    def access_check_keys(self, session_id: uuid.UUID, jti: str) -> tuple[str, str]:
        """What an access check reads, in this order: the access key and the tombstone."""
        return self.access_key(session_id, jti), self.tombstone_key(session_id)

    @staticmethod
    def access_state(access: bytes | None, tombstone: bytes | None) -> str:
        """HIT, MISS or REVOKED from the values of `access_check_keys`."""
        if tombstone is not None:
            return REVOKED
        return HIT if access is not None else MISS

    def _add_counters(self, pipe, counters: dict[str, int]) -> None:
        key = self.stats_key()
        for name, value in counters.items():
            pipe.hincrby(key, name, value)
        pipe.pexpire(key, _ms(timedelta(days=30)))

    def add_to_counter(self, name: str, amount: int, ttl: timedelta) -> int:
        """Atomically add to a rate-limit counter (created with `ttl`); its new value."""
        key = self.counter_key(name)
        return int(self._run(lambda conn: self._script(conn, _COUNT)(
            keys=[key], args=[amount, _ms(ttl)], client=conn)))

    def flush_counters(self, counters: dict[str, int]) -> None:
        def call(conn):
            pipe = conn.pipeline(transaction=False)
            self._add_counters(pipe, counters)
            pipe.execute()

        self._run(call)

    def read_counters(self) -> dict[str, int]:
        raw = self._run(lambda conn: conn.hgetall(self.stats_key()))
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

    # --------------------------------------------------------------- writes
    def put_session(self, keys: SessionKeys, absolute_end: int | None,
                    refresh_ttl: timedelta, access_ttl: timedelta,
                    replaces: SessionKeys | None = None) -> bool:
        """Cache a session's current pair (unless tombstoned); False when refused."""
        sid = keys.session_id
        redis_keys = [self.tombstone_key(sid), self.session_key(sid, keys.refresh_sha256),
                      self.access_key(sid, keys.access_jti)]
        if replaces is not None:
            redis_keys += [self.session_key(sid, replaces.refresh_sha256),
                           self.access_key(sid, replaces.access_jti)]
        args = [self.session_value(keys.access_jti, keys.user_id, absolute_end),
                self.token_part(keys.refresh_sha256), _ms(refresh_ttl), _ms(access_ttl)]
        if replaces is not None:
            args += [self.events_channel(),
                     EVENT_ROTATED + self.event_record(sid, replaces.access_jti)]
        index = self.user_index_key(keys.user_id)

        def call(conn):
            put = self._script(conn, _PUT)
            pipe = conn.pipeline(transaction=False)
            if isinstance(conn, RedisCluster):
                # Cluster pipelines refuse scripts: one more round trip there.
                stored = put(keys=redis_keys, args=args, client=conn)
            else:
                put(keys=redis_keys, args=args, client=pipe)
            pipe.hset(index, sid.hex, 1)
            pipe.pexpire(index, _ms(jwt_settings.REFRESH_TOKEN_LIFETIME))
            results = pipe.execute()
            return stored if isinstance(conn, RedisCluster) else results[0]

        return bool(self._run(call))

    def rotate(self, session_id: uuid.UUID, old_sha256: str, new_sha256: str, new_jti: str,
               refresh_ttl: timedelta, access_ttl: timedelta) -> CachedSession | None:
        """Consume the old refresh key and install the new pair, atomically (and announce
        the superseded pair on the events channel, in the same script).

        None when Redis cannot vouch for the old token (unknown, already used, or the
        session is tombstoned): the caller must then ask the database.
        """
        keys = [self.tombstone_key(session_id), self.session_key(session_id, old_sha256),
                self.session_key(session_id, new_sha256), self.access_key(session_id, new_jti)]
        args = [self.access_key(session_id, ""), new_jti, self.token_part(new_sha256),
                _ms(refresh_ttl), _ms(access_ttl), self.events_channel(),
                EVENT_ROTATED + session_id.bytes]
        raw = self._run(lambda conn: self._script(conn, _ROTATE)(keys=keys, args=args,
                                                                  client=conn))
        if raw is None:
            return None
        try:
            return self._parse_session_value(raw)
        except ValueError:  # garbled by someone who can write Redis: it vouches for nothing
            return None

    def forget(self, sessions: Iterable[SessionKeys], tombstone: bool = True) -> None:
        """Drop sessions' keys in one pipelined round trip; tombstone them if asked.

        The same round trip announces it on the events channel: "revoked" with
        tombstones, else "rotated" (the pairs no longer stand)."""
        tombstone_ms = _ms(revocation_window())

        def call(conn):
            pipe = conn.pipeline(transaction=False)
            unindexed: dict[Any, list[str]] = {}
            doomed: list[str] = []
            records: list[bytes] = []
            for item in sessions:
                sid = item.session_id
                if tombstone:  # every tombstone is set before any key goes
                    pipe.set(self.tombstone_key(sid), 1, px=tombstone_ms)
                doomed += self._pair_keys(item)
                unindexed.setdefault(item.user_id, []).append(sid.hex)
                records.append(self.event_record(sid, None if tombstone else item.access_jti))
            # Few commands, not one per key: DELs of many keys, one HDEL per user. Each
            # command costs the client more than the server (logout-all of 1000 sessions).
            self._delete(pipe, doomed)
            for user_id, hexes in unindexed.items():
                pipe.hdel(self.user_index_key(user_id), *hexes)
            if pipe:
                self._execute_and_announce(
                    conn, pipe, EVENT_REVOKED if tombstone else EVENT_ROTATED, records)

        self._run(call)

    def ping(self) -> None:
        """Raises StoreUnavailable unless Redis answers."""
        self._run(lambda conn: conn.ping())

    def lift_tombstone(self, session_id: uuid.UUID) -> None:
        self._run(lambda conn: conn.delete(self.tombstone_key(session_id)))

    def drop_pairs(self, pairs: Iterable[SessionKeys]) -> None:
        """Delete superseded token pairs in one round trip ("rotated"); their sessions
        live on."""
        def call(conn):
            pipe = conn.pipeline(transaction=False)
            items = list(pairs)
            self._delete(pipe, [key for item in items for key in self._pair_keys(item)])
            self._execute_and_announce(conn, pipe, EVENT_ROTATED, [
                self.event_record(item.session_id, item.access_jti) for item in items])

        self._run(call)

    def _execute_and_announce(self, conn, pipe, kind: bytes, records: list[bytes]) -> None:
        """Run `pipe` with the event messages last, once every write before them is done.
        A cluster pipeline refuses PUBLISH: there the messages follow in their own round
        trip (any node: classic pub/sub reaches every node of a cluster)."""
        messages = self._event_messages(kind, records)
        if isinstance(pipe, ClusterPipeline):
            pipe.execute()
            for message in messages:
                try:
                    conn.publish(self.events_channel(), message,
                                 target_nodes=RedisCluster.RANDOM)
                except ResponseError:
                    pass
            return
        for message in messages:
            pipe.publish(self.events_channel(), message)
        results = pipe.execute(raise_on_error=False)
        for result in results[:len(results) - len(messages)]:
            if isinstance(result, Exception):
                raise result

    def _pair_keys(self, item: SessionKeys) -> tuple[str, str]:
        return (self.session_key(item.session_id, item.refresh_sha256),
                self.access_key(item.session_id, item.access_jti))

    @staticmethod
    def _delete(pipe, keys: list[str]) -> None:
        """Queue DELs of `keys`, a bounded number per command (none blocks Redis long);
        one key per DEL in a cluster, whose pipelines refuse multi-key DEL."""
        step = 1 if isinstance(pipe, ClusterPipeline) else _DEL_BATCH
        for start in range(0, len(keys), step):
            pipe.delete(*keys[start:start + step])

    def indexed_session_ids(self, user_id: Any) -> set[str]:
        members = self._run(lambda conn: conn.hkeys(self.user_index_key(user_id)))
        return {m.decode() if isinstance(m, bytes) else m for m in members}

    def unindex(self, user_id: Any, session_hexes: Iterable[str]) -> None:
        members = list(session_hexes)
        if members:
            self._run(lambda conn: conn.hdel(self.user_index_key(user_id), *members))


store = RedisStore()
