"""The durable outbox: a row per event and stream, written in the transaction that
caused it, so that an event exists exactly when its revocation committed.

`record_*` write rows (called inside the caller's transaction); push rows are handed to
this process's pusher once the transaction commits (`pusher.py`); poll rows wait for
their receiver (`poll.py`); whatever a dead process left is delivered by the
`sendsecurityevents` command.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import events
from . import settings as ssf
from .keys import signing_key
from .models import DeliveryMethod, SsfOutboxEvent, SsfStream, StreamStatus
from .sets import encode_set, new_jti

logger = logging.getLogger("jwt_sessions")


def _streams_for(event_type: str) -> list[SsfStream]:
    """The streams that keep this event: enabled or paused (a paused stream gets its
    events once enabled again), and that asked for it."""
    streams = SsfStream.objects.exclude(status=StreamStatus.DISABLED).order_by("created_at")
    return [stream for stream in streams if event_type in stream.events_requested]


def _record(event_type: str, items: Iterable[tuple[dict[str, Any], dict[str, Any]]],
            streams: list[SsfStream] | None = None) -> int:
    """Write one signed SET per (payload, subject) and stream; push them after commit."""
    if not ssf.enabled():
        return 0
    streams = _streams_for(event_type) if streams is None else streams
    if not streams or not can_sign():
        return 0
    rows = []
    for payload, subject in items:
        txn = new_jti()
        for stream in streams:
            jti, token = encode_set(stream.audience, event_type, payload, subject, txn)
            rows.append(SsfOutboxEvent(stream=stream, jti=jti, token=token))
    SsfOutboxEvent.objects.bulk_create(rows)
    pushed = [row.jti for row in rows if row.stream.delivery_method == DeliveryMethod.PUSH
              and row.stream.status == StreamStatus.ENABLED]
    if pushed:
        from .pusher import pusher

        transaction.on_commit(lambda: pusher.schedule(pushed))
    return len(rows)


def can_sign() -> bool:
    """False (and an error in the log) when no SET key can be loaded: a revocation must
    never fail for want of its signal (`manage.py check` reports it as E305/E306)."""
    try:
        signing_key()
    except Exception:
        logger.exception("Shared Signals: no usable SET signing key; no event recorded")
        return False
    return True


def record_revocations(sessions: Iterable[Any], reason: str) -> int:
    """`session-revoked` for each revoked session (SessionKeys: session_id, user_id)."""
    payload = events.session_revoked(reason, int(time.time()))
    return _record(events.SESSION_REVOKED, (
        (payload, events.session_subject(keys.user_id, keys.session_id))
        for keys in sessions))


def record_credential_change(user_id: Any) -> int:
    """`credential-change` for a user whose password changed."""
    return _record(events.CREDENTIAL_CHANGE, [
        (events.credential_change(int(time.time())), events.user_subject(user_id))])


def record_verification(stream: SsfStream, state: str | None) -> str:
    """A verification event for one stream (the receiver checks its set-up); its jti."""
    payload = {} if state is None else {"state": state}
    subject = {"format": "opaque", "id": str(stream.pk)}
    jti, token = encode_set(stream.audience, events.VERIFICATION, payload, subject, new_jti())
    SsfOutboxEvent.objects.create(stream=stream, jti=jti, token=token)
    if stream.delivery_method == DeliveryMethod.PUSH and stream.status == StreamStatus.ENABLED:
        from .pusher import pusher

        transaction.on_commit(lambda: pusher.schedule([jti]))
    return jti


def push_pending(stream: SsfStream) -> None:
    """Hand a stream's kept events to this process's pusher once the transaction commits
    (a paused stream enabled again)."""
    from .pusher import pusher

    jtis = list(pending().filter(stream=stream).order_by("pk").values_list("jti", flat=True))
    if jtis:
        transaction.on_commit(lambda: pusher.schedule(jtis))


def pending() -> Any:
    """Rows not yet taken by their receiver, nor given up on."""
    return SsfOutboxEvent.objects.filter(delivered_at__isnull=True, failed_at__isnull=True)


def prune() -> tuple[int, int]:
    """Delete the events and received SET ids older than RETENTION; (outbox rows,
    received ids) deleted."""
    from .models import SsfReceivedEvent

    now = timezone.now()
    cutoff = now - ssf.setting("RETENTION")
    # Never taken within RETENTION (a poll stream nobody polls): a receiver would refuse
    # a SET that old anyway.
    pending().filter(created_at__lt=cutoff).update(failed_at=now, last_error="expired")
    done = SsfOutboxEvent.objects.filter(created_at__lt=cutoff).exclude(
        delivered_at__isnull=True, failed_at__isnull=True)
    outbox, _ = done.delete()
    received, _ = SsfReceivedEvent.objects.filter(received_at__lt=cutoff).delete()
    return outbox, received
