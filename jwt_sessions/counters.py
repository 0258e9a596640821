"""This process's counts of what the session store does, in memory, on the ground floor
(everyone may record; this module imports nothing of the package).

The store takes the due counts with the next access-token lookup and adds them to a
shared Redis hash in the same round trip (a pipeline): statistics cost no extra round
trip on the authentication path, and are at most `FLUSH_INTERVAL` seconds (plus the gap
between two requests) stale. `jwt_sessions.stats.snapshot()` totals every process's.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

from . import metrics  # the ground floor too: imports nothing of the package

COUNTERS = ("redis_hits", "redis_misses", "db_fallbacks", "redis_errors", "refreshes",
            "reuse_detected")
FLUSH_INTERVAL = 2.0

_lock = threading.Lock()
_pending: Counter = Counter()
_last_flush = 0.0


def record(name: str, amount: int = 1) -> None:
    with _lock:
        _pending[name] += amount
    metrics.stat_recorded(name, amount)


def take_due() -> dict[str, int] | None:
    """The unflushed counts if a flush is due (and forget them), else None."""
    global _last_flush
    now = time.monotonic()
    if now - _last_flush < FLUSH_INTERVAL:
        return None
    with _lock:
        if not _pending:
            return None
        _last_flush = now
        counts = dict(_pending)
        _pending.clear()
    return counts


def give_back(counts: dict[str, int] | None) -> None:
    """Keep counts whose flush failed, for the next one."""
    if counts:
        with _lock:
            _pending.update(counts)


def take_all() -> dict[str, int]:
    """Every unflushed count (forgotten here: give them back if their flush fails)."""
    with _lock:
        counts = dict(_pending)
        _pending.clear()
    return counts
