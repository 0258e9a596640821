"""Cleanup behind `clearjwtsessions`: bounded table, Redis without orphans."""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .conf import jwt_settings
from .models import Session
from .services import replay_recent_revocations
from .store import SessionKeys, StoreUnavailable, store


@dataclass(frozen=True)
class CleanupResult:
    deleted: int
    replayed: int


def clear_sessions(batch_size: int = 1000, dry_run: bool = False) -> CleanupResult:
    """Delete sessions that ended longer than AUDIT_RETENTION ago, in short batches.

    Idempotent and safe to run concurrently: each batch deletes by primary key what it
    selected, and removing an already removed Redis key is a no-op.
    """
    cutoff = timezone.now() - jwt_settings.AUDIT_RETENTION
    stale = Session.objects.filter(Q(revoked_at__lt=cutoff) | Q(expires_at__lt=cutoff))
    if dry_run:
        return CleanupResult(stale.count(), 0)
    deleted = 0
    while True:
        rows = list(stale.values_list("id", "user_id", "refresh_token_sha256",
                                      "access_jti")[:batch_size])
        if not rows:
            break
        try:
            store.forget([SessionKeys(sid, sha, jti, uid) for sid, uid, sha, jti in rows],
                         tombstone=False)
        except StoreUnavailable:
            pass  # their keys expire by TTL anyway
        with transaction.atomic():
            deleted += Session.objects.filter(pk__in=[row[0] for row in rows]).delete()[0]
    try:
        replayed = replay_recent_revocations()
    except StoreUnavailable:
        replayed = 0
    return CleanupResult(deleted, replayed)
