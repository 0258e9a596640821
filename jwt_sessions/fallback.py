"""The bound on this process's database fallbacks (MAX_CONCURRENT_DB_FALLBACKS), shared
by every path that asks the database when Redis cannot say."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .conf import cached_per_settings, jwt_settings
from .exceptions import ServiceUnavailable

logger = logging.getLogger("jwt_sessions")


@cached_per_settings
def _fallback_slots() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(jwt_settings.MAX_CONCURRENT_DB_FALLBACKS)


@contextmanager
def fallback_gate() -> Iterator[None]:
    """Bound this process's concurrent database fallbacks (MAX_CONCURRENT_DB_FALLBACKS)
    so that a Redis outage or flush cannot pile every request onto the database: beyond
    the bound, 503. Each holder releases the slots it took, even if the bound changed."""
    slots = _fallback_slots()
    if not slots.acquire(blocking=False):
        logger.warning("Database fallback limit (%d) reached; refusing",
                       jwt_settings.MAX_CONCURRENT_DB_FALLBACKS)
        raise ServiceUnavailable()
    try:
        yield
    finally:
        slots.release()
