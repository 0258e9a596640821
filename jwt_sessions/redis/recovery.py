"""Revocations that could not reach Redis reach it as soon as Redis answers again.

The circuit breaker makes a dead Redis cost one timeout per retry interval, and replays
the revocations made meanwhile before this process trusts Redis again. Left to itself,
that replay waits for the first call after the interval ends. Instead, a revocation that
could not be written starts one thread per process that asks Redis (PING) a few times a
second, and replays (tombstones and events) the moment it answers.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connection

logger = logging.getLogger("jwt_sessions")

PROBE_EVERY = 0.1  # seconds between two PINGs while a replay is owed

_lock = threading.Lock()
_prober: threading.Thread | None = None
_stopping = threading.Event()


def replay_when_answered(replay_if_answered: Callable[[], bool]) -> None:
    """Call `replay_if_answered` every PROBE_EVERY, on a thread of its own (one per
    process), until it returns True: the replay is done, or nobody owes one any more."""
    global _prober
    with _lock:
        if _prober is not None and _prober.is_alive():
            return
        _prober = threading.Thread(target=_probe, args=(replay_if_answered,), daemon=True,
                                   name="jwt_sessions-replay")
        _prober.start()


def _probe(replay_if_answered: Callable[[], bool]) -> None:
    try:
        while not _stopping.wait(PROBE_EVERY):
            try:
                if replay_if_answered():
                    return
            except Exception:  # noqa: BLE001 - the next probe tries again
                logger.exception("Replaying revocations to Redis failed; trying again")
    finally:
        connection.close()  # this thread's own database connection


def stop() -> None:
    """Stop the prober (tests; process shutdown): the breaker's interval replays then."""
    global _prober
    _stopping.set()
    with _lock:
        prober, _prober = _prober, None
    if prober is not None and prober is not threading.current_thread():
        prober.join(timeout=5)
    _stopping.clear()
