"""Delivery of pushed SETs: right after the commit, by the process that made the event,
and again with back-off while that process lives; `deliver_due()` (the
`sendsecurityevents` command) takes over whatever a process left behind.

Each attempt first claims its row with a conditional UPDATE (due, not delivered), which
also moves the row's next attempt past the push timeout: two processes never push the
same row at once, and a row whose pusher died mid-delivery is due again after that.
A receiver that got a SET and then saw it again (its 202 was lost) knows it by its `jti`.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from . import settings as ssf
from .models import DeliveryMethod, SsfOutboxEvent, StreamStatus
from .outbox import pending
from .push import push_set

logger = logging.getLogger("jwt_sessions")


def _backoff(attempts: int) -> timedelta:
    first, longest = ssf.setting("RETRY_INTERVAL"), ssf.setting("RETRY_MAX_INTERVAL")
    return min(first * (2 ** max(attempts - 1, 0)), longest)


def _due(now: datetime) -> Any:
    return pending().filter(next_attempt_at__lte=now, stream__status=StreamStatus.ENABLED,
                            stream__delivery_method=DeliveryMethod.PUSH)


def deliver(jti: str) -> timedelta | None:
    """One attempt at one pushed SET: None once it needs no more attempts from this
    caller (delivered, given up, taken by another process, or not due), else how long
    until it should be tried again."""
    now = timezone.now()
    timeout = ssf.setting("PUSH_TIMEOUT")
    lease = now + 2 * timeout + timedelta(seconds=1)  # past any attempt started now
    claimed = _due(now).filter(jti=jti).update(next_attempt_at=lease,
                                               attempts=F("attempts") + 1)
    if not claimed:
        return None
    row = SsfOutboxEvent.objects.select_related("stream").get(jti=jti)
    stream = row.stream
    result = push_set(stream.endpoint_url, row.token, stream.authorization_header,
                      timeout.total_seconds())
    now = timezone.now()
    if result.delivered:
        SsfOutboxEvent.objects.filter(pk=row.pk).update(delivered_at=now, last_error="")
        return None
    if result.permanent or row.attempts >= ssf.setting("MAX_ATTEMPTS"):
        logger.warning("Security event %s to stream %s given up after %d attempt(s): %s",
                       jti, stream.pk, row.attempts, result.detail)
        SsfOutboxEvent.objects.filter(pk=row.pk).update(failed_at=now,
                                                        last_error=result.detail)
        return None
    wait = _backoff(row.attempts)
    logger.info("Security event %s to stream %s not delivered (%s); retry in %s",
                jti, stream.pk, result.detail, wait)
    SsfOutboxEvent.objects.filter(pk=row.pk).update(next_attempt_at=now + wait,
                                                    last_error=result.detail)
    return wait


def deliver_due(limit: int | None = None) -> int:
    """Attempt every pushed SET that is due, whoever wrote it; how many were attempted."""
    attempted = 0
    while limit is None or attempted < limit:
        jtis = list(_due(timezone.now()).order_by("pk").values_list("jti", flat=True)[:100])
        if not jtis:
            break
        for jti in jtis:
            deliver(jti)
            attempted += 1
    return attempted


class Pusher:
    """This process's delivery thread: it sleeps until one of its own events is due, so
    an idle process polls nothing."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}  # jti -> monotonic time of its next attempt
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def schedule(self, jtis: list[str]) -> None:
        now = time.monotonic()
        with self._lock:
            for jti in jtis:
                self._due[jti] = now
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="jwt_sessions-ssf-push")
                self._thread.start()
        self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._due)

    def stop(self) -> None:
        """Forget everything scheduled and end the thread (tests; a process's exit)."""
        with self._lock:
            self._due.clear()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(5)

    def _take_due(self) -> tuple[list[str], float | None]:
        now = time.monotonic()
        with self._lock:
            due = [jti for jti, at in self._due.items() if at <= now]
            later = [at - now for jti, at in self._due.items() if at > now]
        return due, (min(later) if later else None)

    def _run(self) -> None:
        while True:
            due, wait = self._take_due()
            for jti in due:
                self._attempt(jti)
            if due:
                close_old_connections()
                continue
            with self._lock:
                if not self._due:
                    self._thread = None
                    connection.close()
                    return
            self._wake.wait(wait)
            self._wake.clear()

    def _attempt(self, jti: str) -> None:
        try:
            retry = deliver(jti)
        except Exception:  # the database failed us: keep the row for later, here or in the command
            logger.exception("Security event %s: delivery attempt failed", jti)
            retry = _backoff(1)
        with self._lock:
            if jti not in self._due:
                return
            if retry is None:
                del self._due[jti]
            else:
                self._due[jti] = time.monotonic() + retry.total_seconds()


pusher = Pusher()
