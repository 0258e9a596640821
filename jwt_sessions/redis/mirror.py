"""The door of the Redis wing: every caller outside it (flows, throttles, cleanup,
stats) goes through here.

Redis mirrors the session table so that an ordinary request needs no SQL. This module
keeps that mirror honest: it maps rows to their Redis keys, guards each call with a
per-process circuit breaker (a dead Redis costs one timeout per retry interval, not one
per request), and before trusting Redis again after an outage replays what it missed.
`store` only speaks Redis; the decisions about when Redis may be asked live here.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.utils import timezone

from .. import counters
from ..conf import jwt_settings
from ..exceptions import ServiceUnavailable
from ..lifetimes import access_token_ttl, revocation_window
from ..models import Session
from . import local_cache, recovery
from .client import StoreUnavailable
from .layout import HIT, MISS, REPLAYED, REVOKED, CachedSession, SessionKeys
from .store import Meanwhile, astore, store

__all__ = [
    "HIT", "MISS", "REPLAYED", "REVOKED", "CachedSession", "SessionKeys", "StoreUnavailable",
    "Circuit", "circuit", "apply_failure_policy", "session_keys", "keys_of", "cache_session",
    "check_accesses",
    "cache_verified", "tombstone", "restore", "uncache", "check_access", "acheck_access",
    "rotate", "claim_once", "aclaim_once", "claim_while_down", "unclaim", "aunclaim",
    "add_to_counter", "flush_counters", "read_counters",
    "forget_deleted",
    "indexed_session_ids", "unindex", "replay_recent_revocations", "recent_revocations",
]

logger = logging.getLogger("jwt_sessions")
T = TypeVar("T")
# In SessionKeys order: `SessionKeys(*values_list(*_KEY_FIELDS))` builds one.
_KEY_FIELDS = ("id", "refresh_token_sha256", "access_jti", "user_id")


class Circuit:
    """Fail fast while Redis is known to be down; probe it again every retry interval.

    `needs_replay` stays set from the first failure until the revocations made meanwhile
    have been replayed, so this process never trusts Redis before that.
    """

    def __init__(self) -> None:
        self.down_until = 0.0
        self.needs_replay = False

    def is_open(self) -> bool:
        return time.monotonic() < self.down_until

    def trip(self) -> None:
        self.down_until = time.monotonic() + jwt_settings.REDIS_RETRY_INTERVAL.total_seconds()
        self.needs_replay = True

    def reset(self) -> None:
        self.down_until = 0.0
        self.needs_replay = False


circuit = Circuit()


def _guarded(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a store call unless Redis is known down; replay missed revocations first.

    Raises StoreUnavailable: the caller decides, by `REDIS_FAILURE_POLICY`, what then.
    """
    if circuit.is_open():
        raise StoreUnavailable("circuit open")
    try:
        if circuit.needs_replay:
            _resync_after_outage()
        return call(*args, **kwargs)
    except StoreUnavailable as exc:
        _tripped(exc)
        raise


async def _aguarded(call: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`_guarded` for a coroutine of `astore`: the same circuit, the replay in a thread."""
    if circuit.is_open():
        raise StoreUnavailable("circuit open")
    try:
        if circuit.needs_replay:
            await sync_to_async(_resync_after_outage)()
        return await call(*args)
    except StoreUnavailable as exc:
        _tripped(exc)
        raise


def _tripped(exc: StoreUnavailable) -> None:
    if not circuit.is_open():
        logger.warning("Redis unavailable (%s); using the database for %s s", exc,
                       jwt_settings.REDIS_RETRY_INTERVAL.total_seconds())
    circuit.trip()
    counters.record("redis_errors")


def apply_failure_policy() -> None:
    """A request path needed Redis and could not have it: under `REDIS_FAILURE_POLICY`
    "deny" that is a 503; under "database" the caller goes on without Redis."""
    if jwt_settings.REDIS_FAILURE_POLICY == "deny":
        raise ServiceUnavailable()


# Pairs that rotations superseded while Redis was unreachable: a network cut leaves them
# in Redis, where their access tokens would pass again. Bounded: past the bound the
# oldest go first, as theirs are the first access tokens to expire.
_superseded: deque[SessionKeys] = deque(maxlen=100_000)
_resync_lock = threading.Lock()
# Claims (DPoP proofs' jti) this process made in its own memory while Redis could not
# answer, each until it may be forgotten (monotonic). Bounded like `_superseded`.
_claimed_while_down: OrderedDict[str, float] = OrderedDict()
_claims_lock = threading.Lock()
_CLAIMS_KEPT = 100_000
_CLAIMS_PER_TRIP = 1000


def claim_while_down(key: str, ttl: timedelta) -> bool:
    """`claim_once` for when Redis cannot answer: True the first time this process claims
    `key` within `ttl`. The claim reaches Redis before this process trusts it again, so
    what passed during the outage cannot pass again afterwards, in any process. With
    `_CLAIMS_KEPT` live claims kept, a new one is a 503: forgetting a live claim would
    let its proof pass again."""
    now = time.monotonic()
    with _claims_lock:
        if _claimed_while_down.get(key, 0.0) > now:
            return False
        _forget_expired_claims(now)
        if len(_claimed_while_down) >= _CLAIMS_KEPT:
            logger.warning("%d claims kept while Redis is away: refusing more",
                           len(_claimed_while_down))
            raise ServiceUnavailable()
        _claimed_while_down[key] = now + ttl.total_seconds()
        return True


def _forget_expired_claims(now: float) -> None:
    """Drop the claims whose proofs can no longer pass (with the lock held). Oldest
    first; a later claim may expire sooner, so a full memory is swept once through."""
    while _claimed_while_down and next(iter(_claimed_while_down.values())) <= now:
        _claimed_while_down.popitem(last=False)
    if len(_claimed_while_down) >= _CLAIMS_KEPT:
        for stale in [k for k, until in _claimed_while_down.items() if until <= now]:
            del _claimed_while_down[stale]


def _write_claims_made_while_down() -> None:
    """Claim in Redis, in batches, what this process claimed without it (not expired)."""
    while True:
        now = time.monotonic()
        with _claims_lock:
            batch = [(key, until - now) for key, until
                     in itertools.islice(_claimed_while_down.items(), _CLAIMS_PER_TRIP)]
        if not batch:
            return
        live = [(key, timedelta(seconds=left)) for key, left in batch if left > 0]
        if live:
            store.claim_all(live)
        with _claims_lock:
            for key, _ in batch:
                _claimed_while_down.pop(key, None)


def _resync_after_outage() -> None:
    """Before trusting Redis again: replay recent revocations (this process's and any
    other's), write the claims made without Redis, and delete the pairs this process's
    rotations superseded meanwhile."""
    with _resync_lock:
        if not circuit.needs_replay:
            return  # another thread just did it
        replayed = replay_recent_revocations()
        _write_claims_made_while_down()
        while _superseded:
            batch = [_superseded[i] for i in range(min(len(_superseded), 1000))]
            store.drop_pairs(batch)
            local_cache.forget(item.session_id for item in batch)
            for _ in batch:
                _superseded.popleft()
        circuit.reset()
    logger.info("Redis reachable again; %d recent revocation(s) replayed", replayed)


def _replay_if_answered() -> bool:
    """For the prober: replay now if Redis answers; True once nothing is owed."""
    if not circuit.needs_replay:
        return True
    try:
        store.ping()
        _resync_after_outage()
    except StoreUnavailable:
        return False
    return True


# ------------------------------------------------------------------ rows -> keys
def session_keys(queryset: Any) -> list[SessionKeys]:
    """The Redis identifiers of a queryset's sessions, without building model objects."""
    return [SessionKeys(*values) for values in queryset.values_list(*_KEY_FIELDS)]


def keys_of(session: Session) -> SessionKeys:
    return SessionKeys(session.id, session.refresh_token_sha256, session.access_jti,
                       session.user_id)


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


# ------------------------------------------------------------------ sessions
def cache_session(session: Session, replaces: SessionKeys | None = None) -> None:
    """Write a session's current pair to Redis (best effort under policy "database")."""
    left = session.expires_at - timezone.now()
    try:
        _guarded(store.put_session, keys_of(session), _epoch(session.absolute_expires_at),
                 refresh_ttl=left, access_ttl=min(access_token_ttl(), left),
                 replaces=replaces)
    except StoreUnavailable:
        if replaces is not None:
            _superseded.append(replaces)
        apply_failure_policy()
    finally:
        if replaces is not None:
            local_cache.forget([replaces.session_id])


def cache_verified(session: Session, replaced: SessionKeys | None = None) -> None:
    """Cache the pair the row holds (after a database-path rotation, or to rehydrate), and
    take it back out if the row has moved on meanwhile: a concurrent rotation's own cache
    write may have run before ours, and a superseded pair must not stay usable from
    Redis. Either that rotation swapped the row before our re-read (we see it and remove
    ours), or after it (its write comes after ours and replaces it)."""
    cache_session(session, replaces=replaced)
    current = Session.objects.filter(pk=session.pk).values_list(
        "refresh_token_sha256", "access_jti").first()
    if current != (session.refresh_token_sha256, session.access_jti):
        uncache(keys_of(session))


def tombstone(sessions: list[SessionKeys]) -> None:
    """Tombstone revoked sessions in Redis; if unreachable, the circuit replays it later."""
    if not sessions:
        return
    try:
        _guarded(store.forget, sessions)
    except StoreUnavailable:
        logger.warning("Redis unreachable: %d revocation(s) will be replayed as soon as "
                       "it answers", len(sessions))
        recovery.replay_when_answered(_replay_if_answered)
    finally:
        local_cache.forget(item.session_id for item in sessions)


def restore(session: Session) -> None:
    """Lift a session's tombstone and cache its pair again (a revocation its own code
    took back at once, see `services.update_session_auth`). Without Redis the tombstone
    keeps refusing the session's access tokens until it expires: refresh still works."""
    try:
        _guarded(store.lift_tombstone, session.pk)
    except StoreUnavailable:
        logger.warning("Redis unreachable: session %s restored in the database only",
                       session.pk)
        return
    cache_session(session)


def uncache(keys: SessionKeys) -> None:
    """Drop one pair a failed or overtaken write left in Redis; its session may live on,
    so no tombstone. Best effort: the pair's keys expire by TTL anyway."""
    try:
        _guarded(store.forget, [keys], tombstone=False)
    except StoreUnavailable:
        pass
    finally:
        local_cache.forget([keys.session_id])


def check_access(session_id: Any, jti: str, claim: tuple[str, timedelta] | None = None,
                 meanwhile: Meanwhile | None = None) -> str:
    """HIT, MISS or REVOKED for an access token (one round trip, which carries the due
    counters too, and `claim`, a DPoP proof's: REPLAYED if it was claimed before), with
    `meanwhile` run while Redis answers (not at all if Redis is known down); raises
    StoreUnavailable."""
    return _guarded(store.check_access, session_id, jti, claim, meanwhile)


def check_accesses(tokens: list[tuple[Any, str]]) -> list[str]:
    """`check_access` of several tokens in one round trip; raises StoreUnavailable."""
    return _guarded(store.check_accesses, tokens)


async def acheck_access(session_id: Any, jti: str,
                        claim: tuple[str, timedelta] | None = None,
                        meanwhile: Meanwhile | None = None) -> str:
    """`check_access` without blocking the event loop; raises StoreUnavailable."""
    return await _aguarded(astore.check_access, session_id, jti, claim, meanwhile)


def claim_once(key: str, ttl: timedelta, meanwhile: Meanwhile | None = None) -> bool:
    """True the first time `key` is claimed within `ttl` (a DPoP proof's jti), with
    `meanwhile` run while Redis answers."""
    return _guarded(store.claim_once, key, ttl, meanwhile)


async def aclaim_once(key: str, ttl: timedelta, meanwhile: Meanwhile | None = None) -> bool:
    return await _aguarded(astore.claim_once, key, ttl, meanwhile)


def unclaim(key: str) -> None:
    """Drop a claim made for a proof whose signature then proved false."""
    _guarded(store.unclaim, key)


async def aunclaim(key: str) -> None:
    await _aguarded(astore.unclaim, key)


def rotate(session_id: Any, old_sha256: str, new_sha256: str, new_jti: str,
           refresh_ttl: timedelta, access_ttl: timedelta) -> CachedSession | None:
    """Consume the old refresh key, install the new pair; raises StoreUnavailable."""
    try:
        return _guarded(store.rotate, session_id, old_sha256, new_sha256, new_jti,
                        refresh_ttl, access_ttl)
    finally:
        local_cache.forget([session_id])


REPLAY_BATCH = 1000


def replay_recent_revocations(batch_size: int | None = None) -> int:
    """Tombstone every session revoked recently enough that its access token may live.

    Run before this process trusts Redis again after an outage, and by
    `clearjwtsessions`; a revocation older than an access lifetime needs no replay, as
    its access tokens have expired and refresh always asks the database. A batch at a
    time (REPLAY_BATCH unless given), so that a mass revocation costs bounded queries and
    pipelines, not one of each.
    """
    replayed = 0
    for rows in _key_batches(recent_revocations(), batch_size or REPLAY_BATCH):
        store.forget(rows)
        local_cache.forget(row.session_id for row in rows)
        replayed += len(rows)
    return replayed


def recent_revocations() -> Any:
    """Sessions revoked recently enough that one of their access tokens may still live."""
    return Session.objects.filter(revoked_at__gte=timezone.now() - revocation_window())


def _key_batches(queryset: Any, batch_size: int) -> Iterable[list[SessionKeys]]:
    """A queryset's session keys, `batch_size` at a time (keyset pagination by id)."""
    queryset = queryset.order_by("pk")
    while rows := session_keys(queryset[:batch_size]):
        yield rows
        queryset = queryset.filter(pk__gt=rows[-1].session_id)


# ------------------------------------------------------------------ deleted rows
def forget_deleted(keys: SessionKeys) -> None:
    """Drop a deleted row's keys, so no session key outlives its row (deleted by the
    ORM: a cascade from its user, a queryset, the cleanup). Inside a transaction they go
    once it commits, all of that transaction's in one round trip."""
    if not connection.in_atomic_block:
        _drop_deleted([keys])
        return
    pending = connection.__dict__.setdefault(_DELETED, [])
    pending.append(keys)
    # A rolled-back transaction takes our callback with it: register again then.
    if not any(entry[1] is _flush_deleted for entry in connection.run_on_commit):
        transaction.on_commit(_flush_deleted)


_DELETED = "_jwt_sessions_deleted_sessions"


def _flush_deleted() -> None:
    _drop_deleted(connection.__dict__.pop(_DELETED, []))


def _drop_deleted(sessions: list[SessionKeys]) -> None:
    if not sessions:
        return
    try:
        _guarded(store.forget, sessions, tombstone=False)
    except StoreUnavailable:
        pass  # their keys expire by TTL


# ------------------------------------------------------------------ cleanup
def forget_ended(sessions: list[SessionKeys]) -> None:
    """Drop ended sessions' keys without tombstones; raises StoreUnavailable."""
    local_cache.forget(item.session_id for item in sessions)
    _guarded(store.forget, sessions, tombstone=False)


def indexed_session_ids(user_id: Any) -> set[str]:
    return _guarded(store.indexed_session_ids, user_id)


def unindex(user_id: Any, session_hexes: Iterable[str]) -> None:
    _guarded(store.unindex, user_id, session_hexes)


# ------------------------------------------------------------------ counters
def add_to_counter(name: str, amount: int, ttl: timedelta) -> int:
    """Atomically add to a rate-limit counter; raises StoreUnavailable."""
    return _guarded(store.add_to_counter, name, amount, ttl)


def flush_counters(counters: dict[str, int]) -> None:
    _guarded(store.flush_counters, counters)


def read_counters() -> dict[str, int]:
    return _guarded(store.read_counters)
