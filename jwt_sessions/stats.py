"""Counters of what the session store does, totalled across every worker process.

Each process counts in memory and hands its counts to the next access-token lookup,
which adds them to a shared Redis hash in the same round trip (a pipeline): statistics
cost no extra round trip on the authentication path, and are at most
`FLUSH_INTERVAL` seconds (plus the gap between two requests) stale.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

from . import metrics

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


def snapshot() -> dict[str, int]:
    """Totals across all processes (this one's unflushed counts included)."""
    from . import mirror  # mirror records counters: imported late, no cycle

    with _lock:
        counts = dict(_pending)
        _pending.clear()
    try:
        if counts:
            mirror.flush_counters(counts)
            counts = {}
        shared = mirror.read_counters()
    except mirror.StoreUnavailable:
        give_back(counts)
        shared = {}
    return {name: int(shared.get(name, 0)) + counts.get(name, 0) for name in COUNTERS}
