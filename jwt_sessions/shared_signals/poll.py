"""Poll delivery (RFC 8936): a receiver acknowledges what it took and asks for more."""
from __future__ import annotations

import time
from typing import Any

from django.utils import timezone

from . import settings as ssf
from .models import SsfStream, StreamStatus
from .outbox import pending

MAX_EVENTS_CAP = 1000
_WAIT_STEP = 0.25


def acknowledge(stream: SsfStream, acks: list[str], errors: dict[str, Any]) -> None:
    """Acked SETs are delivered; SETs the receiver reported an error for are given up."""
    now = timezone.now()
    if acks:
        pending().filter(stream=stream, jti__in=acks).update(delivered_at=now)
    for jti, error in errors.items():
        detail = f"{error.get('err', '')}: {error.get('description', '')}"[:500]
        pending().filter(stream=stream, jti=jti).update(failed_at=now, last_error=detail)


def poll(stream: SsfStream, max_events: int, return_immediately: bool
         ) -> tuple[dict[str, str], bool]:
    """({jti: SET}, more available) of the stream's SETs not yet acknowledged, oldest
    first; without `return_immediately`, waits up to POLL_WAIT for the first one."""
    if max_events == 0 or stream.status != StreamStatus.ENABLED:
        return {}, False
    limit = min(max_events, MAX_EVENTS_CAP)
    deadline = time.monotonic() + (0 if return_immediately
                                   else ssf.setting("POLL_WAIT").total_seconds())
    while True:
        rows = list(pending().filter(stream=stream).order_by("pk")
                    .values_list("jti", "token")[:limit + 1])
        if rows or time.monotonic() >= deadline:
            return dict(rows[:limit]), len(rows) > limit
        time.sleep(_WAIT_STEP)
