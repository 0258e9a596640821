"""Every write of the store as one check, run by either face (`Face("sync")`,
`Face("async")`): what Redis holds after it, and what it announced on the events
channel. tests/test_store_faces.py runs them on the embedded Redis, tests/test_cluster.py
on a real 3-master cluster, whose sessions live on different slots and nodes."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync

from jwt_sessions.redis import layout, scripts
from jwt_sessions.redis.client import is_cluster
from jwt_sessions.redis.layout import HIT, MISS, REVOKED, SessionKeys
from jwt_sessions.redis.store import RedisStore, Trip, astore, store

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
USER = 7


class Face:
    """Calls a store method on the sync face, or awaits it on the async face in an event
    loop of its own (whose client is closed after), the sync face barred meanwhile: the
    async face must make every round trip itself."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.name == "sync":
            return getattr(store, method)(*args, **kwargs)

        async def awaited() -> Any:
            try:
                return await getattr(astore, method)(*args, **kwargs)
            finally:
                await astore.aclose()

        sync_replies = RedisStore._replies
        RedisStore._replies = _barred  # type: ignore[method-assign]
        try:
            return async_to_sync(awaited)()
        finally:
            RedisStore._replies = sync_replies  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return self.name


def _barred(*args: Any) -> list[Any]:
    raise AssertionError("the async face used the sync one")


def new_keys(user_id: Any = USER) -> SessionKeys:
    return SessionKeys(uuid.uuid4(), uuid.uuid4().hex * 2, uuid.uuid4().hex, user_id)


def cached(keys: SessionKeys) -> SessionKeys:
    """`keys`, put in Redis by the sync face (what the check under test starts from)."""
    assert store.put_session(keys, None, refresh_ttl=DAY, access_ttl=MINUTE)
    return keys


def state(keys: SessionKeys) -> str:
    return store.check_access(keys.session_id, keys.access_jti)


def indexed(conn: Any, user_id: Any = USER) -> set[str]:
    return {member.decode() for member in conn.hkeys(layout.user_index_key(user_id))}


class Announcements:
    """The events channel, subscribed before a write: what the write announced."""

    def __init__(self, conn: Any) -> None:
        self.pubsub = conn.pubsub()
        self.pubsub.subscribe(layout.events_channel())
        self._wait(lambda message: message["type"] == "subscribe")

    def _wait(self, wanted: Callable[[dict], bool]) -> dict:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.1)
            if message is not None and wanted(message):
                return message
        raise AssertionError("nothing announced within 5 s")

    def next(self) -> tuple[bytes, list[tuple[uuid.UUID, str | None]]]:
        message = self._wait(lambda message: message["type"] == "message")
        return layout.parse_event(message["data"])

    def close(self) -> None:
        self.pubsub.close()


# ------------------------------------------------------------------ one check a write
def puts_a_session(face: Face, conn: Any) -> None:
    keys = new_keys()
    assert face("put_session", keys, None, refresh_ttl=DAY, access_ttl=MINUTE) is True
    access = layout.access_key(keys.session_id, keys.access_jti)
    assert conn.get(access) == layout.token_part(keys.refresh_sha256).encode()
    assert 0 < conn.pttl(access) <= layout.ms(MINUTE)
    session = layout.session_key(keys.session_id, keys.refresh_sha256)
    assert layout.parse_session_value(conn.get(session)).user_id == str(USER)
    assert layout.ms(MINUTE) < conn.pttl(session) <= layout.ms(DAY)
    assert indexed(conn) == {keys.session_id.hex}
    assert state(keys) == HIT


def refuses_to_put_a_tombstoned_session(face: Face, conn: Any) -> None:
    keys = cached(new_keys())
    store.forget([keys])
    assert face("put_session", keys, None, refresh_ttl=DAY, access_ttl=MINUTE) is False
    assert state(keys) == REVOKED
    assert conn.get(layout.access_key(keys.session_id, keys.access_jti)) is None


def puts_a_pair_in_place_of_the_previous_one(face: Face, conn: Any) -> None:
    old = cached(new_keys())
    new = SessionKeys(old.session_id, uuid.uuid4().hex * 2, uuid.uuid4().hex, USER)
    heard = Announcements(conn)
    try:
        assert face("put_session", new, None, refresh_ttl=DAY, access_ttl=MINUTE,
                    replaces=old) is True
        assert heard.next() == (layout.EVENT_ROTATED, [(old.session_id, old.access_jti)])
    finally:
        heard.close()
    assert (state(old), state(new)) == (MISS, HIT)
    assert conn.get(layout.session_key(old.session_id, old.refresh_sha256)) is None


def rotates_once(face: Face, conn: Any) -> None:
    old = cached(new_keys())
    sid, new_sha = old.session_id, uuid.uuid4().hex * 2
    heard = Announcements(conn)
    try:
        rotated = face("rotate", sid, old.refresh_sha256, new_sha, "jti-new", DAY, MINUTE)
        assert (rotated.access_jti, rotated.user_id) == (old.access_jti, str(USER))
        assert heard.next() == (layout.EVENT_ROTATED, [(sid, old.access_jti)])
    finally:
        heard.close()
    assert face("rotate", sid, old.refresh_sha256, "c" * 64, "jti-other", DAY, MINUTE) is None
    assert state(old) == MISS
    assert state(SessionKeys(sid, new_sha, "jti-new", USER)) == HIT


def refuses_to_rotate_a_tombstoned_session(face: Face, conn: Any) -> None:
    keys = cached(new_keys())
    store.forget([keys])
    assert face("rotate", keys.session_id, keys.refresh_sha256, "a" * 64, "j", DAY,
                MINUTE) is None


def revokes(face: Face, conn: Any) -> None:
    """Tombstones, keys and the user index of sessions on different slots, in one write,
    and one "revoked" announcement of them all."""
    sessions = [cached(new_keys()) for _ in range(3)]
    other_user = cached(new_keys(user_id=8))
    heard = Announcements(conn)
    try:
        face("forget", [*sessions, other_user])
        kind, records = heard.next()
    finally:
        heard.close()
    assert (kind, sorted(records)) == (layout.EVENT_REVOKED, sorted(
        (item.session_id, None) for item in [*sessions, other_user]))
    assert {state(item) for item in [*sessions, other_user]} == {REVOKED}
    assert indexed(conn) == set() and indexed(conn, 8) == set()
    for item in sessions:
        assert conn.get(layout.session_key(item.session_id, item.refresh_sha256)) is None


def forgets_without_a_tombstone(face: Face, conn: Any) -> None:
    keys = cached(new_keys())
    heard = Announcements(conn)
    try:
        face("forget", [keys], tombstone=False)
        assert heard.next() == (layout.EVENT_ROTATED, [(keys.session_id, keys.access_jti)])
    finally:
        heard.close()
    assert state(keys) == MISS
    assert conn.exists(layout.tombstone_key(keys.session_id)) == 0
    assert store.put_session(keys, None, refresh_ttl=DAY, access_ttl=MINUTE) is True


def forgets_nothing_harmlessly(face: Face, conn: Any) -> None:
    keys = cached(new_keys())
    face("forget", [])
    face("drop_pairs", [])
    face("unindex", USER, [])
    assert state(keys) == HIT and indexed(conn) == {keys.session_id.hex}


def drops_superseded_pairs(face: Face, conn: Any) -> None:
    pairs = [cached(new_keys()) for _ in range(2)]
    heard = Announcements(conn)
    try:
        face("drop_pairs", pairs)
        kind, records = heard.next()
    finally:
        heard.close()
    assert (kind, sorted(records)) == (layout.EVENT_ROTATED, sorted(
        (item.session_id, item.access_jti) for item in pairs))
    assert {state(item) for item in pairs} == {MISS}
    assert indexed(conn) == {item.session_id.hex for item in pairs}  # they live on


def lifts_a_tombstone(face: Face, conn: Any) -> None:
    keys = cached(new_keys())
    store.forget([keys])
    face("lift_tombstone", keys.session_id)
    assert conn.exists(layout.tombstone_key(keys.session_id)) == 0
    assert store.put_session(keys, None, refresh_ttl=DAY, access_ttl=MINUTE) is True


def unindexes(face: Face, conn: Any) -> None:
    kept, dropped = cached(new_keys()), cached(new_keys())
    face("unindex", USER, [dropped.session_id.hex])
    assert indexed(conn) == {kept.session_id.hex}
    assert face("indexed_session_ids", USER) == {kept.session_id.hex}


def counts(face: Face, conn: Any) -> None:
    assert face("add_to_counter", "login:1.2.3.4", 2, MINUTE) == 2
    assert face("add_to_counter", "login:1.2.3.4", 3, MINUTE) == 5
    assert 0 < conn.pttl(layout.counter_key("login:1.2.3.4")) <= layout.ms(MINUTE)
    face("flush_counters", {"redis_hits": 4, "refreshes": 1})
    face("flush_counters", {"redis_hits": 1})
    assert face("read_counters") == {"redis_hits": 5, "refreshes": 1}
    assert conn.pttl(layout.stats_key()) > 0


def runs_scripts_a_redis_lacks(face: Face, conn: Any) -> None:
    """A Redis that restarted, was flushed, or (a cluster's node) never ran a script:
    the trip sends its source, alone or in a pipeline. (Scripts of their own, so that
    no other user of that Redis loses its scripts.)"""
    key = layout.counter_key(f"{{{uuid.uuid4().hex}}}")
    in_a_pipeline = not is_cluster(conn)  # a cluster pipeline refuses scripts

    def plan(alone: bool) -> Trip[Any]:
        script = scripts.Script(
            f"-- {uuid.uuid4()}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
        trip = Trip(lambda replies: replies)
        trip.add_script(script, [key], [2])
        if not alone:
            trip.add("pexpire", key, layout.ms(MINUTE))
        return trip

    assert face("run", lambda cluster: plan(alone=True)) == [2]
    assert face("run", lambda cluster: plan(alone=not in_a_pipeline)) == (
        [4, True] if in_a_pipeline else [4])
    assert conn.get(key) == b"4"


def claims_what_passed_without_redis(face: Face, conn: Any) -> None:
    """Claims made while Redis was away reach it with their TTLs; one another process
    made meanwhile stands as it was."""
    made_meanwhile, new = (layout.dpop_proof_key("k", uuid.uuid4().hex) for _ in range(2))
    assert store.claim_once(made_meanwhile, DAY) is True
    face("claim_all", [(made_meanwhile, MINUTE), (new, MINUTE)])
    assert layout.ms(MINUTE) < conn.pttl(made_meanwhile) <= layout.ms(DAY)
    assert 0 < conn.pttl(new) <= layout.ms(MINUTE)
    assert store.claim_once(new, MINUTE) is False


EVERY_WRITE = [puts_a_session, refuses_to_put_a_tombstoned_session,
               puts_a_pair_in_place_of_the_previous_one, rotates_once,
               refuses_to_rotate_a_tombstoned_session, revokes, forgets_without_a_tombstone,
               forgets_nothing_harmlessly, drops_superseded_pairs, lifts_a_tombstone,
               unindexes, counts, runs_scripts_a_redis_lacks,
               claims_what_passed_without_redis]
FACES = [Face("sync"), Face("async")]
