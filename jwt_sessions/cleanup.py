"""Cleanup behind `clearjwtsessions`: a bounded table, and Redis without orphans.

Three steps, each idempotent and safe to run while another run (or the site) works:
1. delete sessions that ended more than `AUDIT_RETENTION` ago (never within the
   revocation window, which step 3 still needs), in short batches;
2. prune the per-user Redis indexes: members whose row is gone or no longer active are
   removed, with the keys of those sessions;
3. replay recent revocations, in case Redis missed one while it was unreachable (in
   batches too).
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .conf import jwt_settings
from .lifetimes import revocation_window
from .models import Session
from .redis import mirror
from .redis.mirror import (
    SessionKeys,
    StoreUnavailable,
    recent_revocations,
    replay_recent_revocations,
    session_keys,
)

logger = logging.getLogger("jwt_sessions")


@dataclass(frozen=True)
class CleanupResult:
    deleted: int
    pruned: int
    replayed: int
    redis_available: bool = True


# The largest --batch-size: a LIMIT every database holds, a pipeline Redis takes.
MAX_BATCH_SIZE = 100_000


def stale_sessions():
    """Sessions that ended (revoked or expired) longer than AUDIT_RETENTION ago.

    Never one that ended within the revocation window, whatever AUDIT_RETENTION says: a
    revocation made while Redis was down reaches it only by the replay, which needs the
    row; deleting it first would let Redis accept the access token again.
    """
    cutoff = timezone.now() - max(jwt_settings.AUDIT_RETENTION, revocation_window())
    return Session.objects.filter(Q(revoked_at__lt=cutoff) | Q(expires_at__lt=cutoff)).order_by()


def delete_stale(batch_size: int) -> int:
    """Delete stale rows a batch at a time, each batch its own short transaction.

    A concurrent run may delete a row this one selected: the DELETE by primary key then
    simply counts it once, in whichever run got there first.
    """
    deleted = 0
    while True:
        ids = list(stale_sessions().values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():  # the rows' Redis keys go in one round trip at commit
            batch = Session.objects.filter(pk__in=ids)
            # Write before the delete reads its rows (it sends signals, so it selects
            # first): the write lock comes first, and SQLite queues a concurrent run
            # instead of failing it with "database is locked" (no lock upgrade).
            batch.update(expires_at=F("expires_at"))
            deleted += batch.delete()[0]


def _users_with_sessions(batch_size: int) -> Iterator[list[Any]]:
    """Distinct user ids of the session table, a batch at a time (keyset pagination)."""
    last = None
    while True:
        users = Session.objects.order_by("user_id").values_list("user_id", flat=True)
        if last is not None:
            users = users.filter(user_id__gt=last)
        batch = list(users.distinct()[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1]


def _orphans_of(user_id: Any) -> tuple[list[SessionKeys], list[str]]:
    """(inactive sessions still indexed, indexed members without a row) of one user."""
    indexed = _as_uuids(mirror.indexed_session_ids(user_id))
    ids = {pk for pk in indexed.values() if pk is not None}
    live = set(Session.objects.active().filter(pk__in=ids).values_list("pk", flat=True))
    ended = session_keys(Session.objects.filter(pk__in=ids - live))
    known = {keys.session_id for keys in ended} | live
    return ended, sorted(member for member, pk in indexed.items() if pk not in known)


def _as_uuids(members: set[str]) -> dict[str, uuid.UUID | None]:
    """Index members by their session id; None for a member that is not one."""
    parsed: dict[str, uuid.UUID | None] = {}
    for member in members:
        try:
            parsed[member] = uuid.UUID(hex=member)
        except ValueError:
            parsed[member] = None
    return parsed


def prune_redis(batch_size: int, dry_run: bool = False) -> int:
    """Drop index members (and keys) of sessions that ended or whose row is gone.

    An ended session's keys are removed without a tombstone: had its revocation been
    missed, `replay_recent_revocations` (run right after) tombstones it; older ones hold
    no live access token, and refresh always asks the database. An id without a row is
    only unindexed, as its keys cannot be named and expire by TTL: it may also be a
    login whose row is not committed yet.
    """
    pruned = 0
    for users in _users_with_sessions(batch_size):
        for user_id in users:
            ended, unknown = _orphans_of(user_id)
            pruned += len(ended) + len(unknown)
            if dry_run:
                continue
            if ended:
                mirror.forget_ended(ended)
            mirror.unindex(user_id, unknown)
    return pruned


def clear_sessions(batch_size: int = 1000, dry_run: bool = False) -> CleanupResult:
    """Run the three steps (or, with `dry_run`, count what they would do)."""
    if dry_run:
        deleted = stale_sessions().count()
    else:
        deleted = delete_stale(batch_size)
    try:
        pruned = prune_redis(batch_size, dry_run=dry_run)
        replayed = (recent_revocations().count() if dry_run
                    else replay_recent_revocations(batch_size))
    except StoreUnavailable as exc:
        logger.warning("clearjwtsessions: Redis unavailable (%s); Redis steps skipped", exc)
        return CleanupResult(deleted, 0, 0, redis_available=False)
    if not dry_run:
        logger.info("clearjwtsessions: %d session(s) deleted, %d Redis orphan(s) pruned, "
                    "%d revocation(s) replayed", deleted, pruned, replayed)
    return CleanupResult(deleted, pruned, replayed)
