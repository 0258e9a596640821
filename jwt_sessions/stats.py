"""Counters of what the session store does, totalled across every worker process.

Each process counts in memory (`record`, in `jwt_sessions.counters`); the store adds the
counts to a shared Redis hash with the access checks, so a snapshot is at most
`FLUSH_INTERVAL` seconds stale for other processes, and exact for this one.
"""
from __future__ import annotations

from . import counters
from .counters import COUNTERS, record
from .redis import mirror

__all__ = ["COUNTERS", "record", "snapshot"]


def snapshot() -> dict[str, int]:
    """Totals across all processes (this one's unflushed counts included)."""
    counts = counters.take_all()
    try:
        if counts:
            mirror.flush_counters(counts)
            counts = {}
        shared = mirror.read_counters()
    except mirror.StoreUnavailable:
        counters.give_back(counts)
        shared = {}
    return {name: int(shared.get(name, 0)) + counts.get(name, 0) for name in COUNTERS}
