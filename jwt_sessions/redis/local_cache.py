"""LOCAL_CACHE: repeat checks of a live access token answered from this process's memory.

An entry records that Redis vouched for an access token (session id, jti) a moment ago.
It is trusted at most `max_age`, and only while the revocation events are proven live
(`events.healthy()`): a revocation anywhere drops the entry within milliseconds, a gap
drops everything, and a silent partition ends trust within three heartbeats. The process
that revokes or rotates drops its own entry at once (the mirror calls `forget`), before
the call returns. Only a Redis HIT is remembered, never a database answer.

A lookup that races a revocation cannot put a dead token back: `keep` is handed the
cache's version from before the Redis check and refuses if the session was dropped (or
everything cleared) since.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.core.signals import setting_changed

from ..conf import as_timedelta, cached_per_settings, jwt_settings
from . import events

DEFAULT_MAX_AGE = timedelta(seconds=30)
DEFAULT_MAX_ENTRIES = 10_000
# How many recent drops are remembered for racing lookups; past it, every lookup that
# started before the oldest remembered drop is refused (safe, merely a miss).
_REMEMBERED_DROPS = 4096


class LocalCache:
    """A bounded LRU of access tokens Redis vouched for: session id -> (jti, trusted
    until). One entry per session, as a session has only one live access token.

    Keyed by the session id's integer: its hashing and comparison run no Python code, so
    each dictionary operation is atomic and lock-free reads are safe beside locked writes.
    """

    def __init__(self, max_age: float, max_entries: int) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self.hits = self.misses = 0
        self._entries: OrderedDict[int, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._version = 0  # moves on with every drop or clear
        self._dropped: dict[int, int] = {}  # session -> version of its last drop
        self._floor = 0  # lookups that started before this version may not keep

    def __len__(self) -> int:
        return len(self._entries)

    def holds(self, session_id: uuid.UUID, jti: str) -> bool:
        """True if this token may be accepted without asking Redis."""
        key = session_id.int
        entry = self._entries.get(key)
        # The events that reached this process first (one may drop this very entry).
        if (entry is None or entry[0] != jti or time.monotonic() >= entry[1]
                or not events.healthy() or not events.drain()
                or self._entries.get(key) is not entry):
            self.misses += 1
            return False
        try:
            self._entries.move_to_end(key)
        except KeyError:  # dropped by another thread meanwhile
            self.misses += 1
            return False
        self.hits += 1
        return True

    def version(self) -> int:
        """Take before asking Redis; hand to `keep` afterwards."""
        return self._version

    def keep(self, session_id: uuid.UUID, jti: str, since: int) -> None:
        """Remember a token Redis just vouched for, unless its session was dropped (or
        everything cleared) after `since`, or the events cannot be trusted now."""
        if not events.healthy():
            return
        until = time.monotonic() + self.max_age
        key = session_id.int
        with self._lock:
            if since != self._version and (
                    since < self._floor or self._dropped.get(key, -1) > since):
                return
            self._entries[key] = (jti, until)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop(self, session_ids: Iterable[uuid.UUID]) -> None:
        with self._lock:
            self._version += 1
            for session_id in session_ids:
                self._entries.pop(session_id.int, None)
                self._dropped[session_id.int] = self._version
            if len(self._dropped) > _REMEMBERED_DROPS:
                self._dropped.clear()
                self._floor = self._version

    def clear(self) -> None:
        with self._lock:
            self._version += 1
            self._entries.clear()
            self._dropped.clear()
            self._floor = self._version


# The cache built under the current settings (None until the first check) and the
# unsubscribe of its event consumer.
_state: dict[str, Any] = {"cache": None, "unsubscribe": None}


@cached_per_settings
def current() -> LocalCache | None:
    """This process's cache under the current settings (None: LOCAL_CACHE is off)."""
    return _build()


def lookups() -> tuple[int, int]:
    """(hits, misses) of the cache in use: (0, 0) while there is none."""
    cache = _state["cache"]
    return (0, 0) if cache is None else (cache.hits, cache.misses)


def forget(session_ids: Iterable[Any]) -> None:
    """This process revoked or rotated these sessions: drop them now, not on the event.
    A process that has not checked a token yet holds nothing (and starts no receiver)."""
    cache = _state["cache"]
    if cache is not None:
        cache.drop(list(session_ids))


def settings_of(config: dict) -> tuple[float, int]:
    """(max_age seconds, max_entries) of a LOCAL_CACHE dict, defaults filled in."""
    max_age = as_timedelta(config.get("max_age", DEFAULT_MAX_AGE))
    return max_age.total_seconds(), config.get("max_entries", DEFAULT_MAX_ENTRIES)


def _build() -> LocalCache | None:
    config = jwt_settings.LOCAL_CACHE
    cache = None if config is None else LocalCache(*settings_of(config))
    _state["cache"] = cache
    if cache is not None and _state["unsubscribe"] is None:
        _state["unsubscribe"] = events.subscribe(_on_event)
    return cache


def _on_event(event: events.SessionEvent) -> None:
    cache = _state["cache"]
    if cache is None:
        return
    if event.kind == events.GAP:
        cache.clear()
    else:
        cache.drop([event.session_id])


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    """The next lookup builds a cache from the new settings (or none): stop listening."""
    if setting == "JWT_SESSIONS":
        _state["cache"] = None
        unsubscribe, _state["unsubscribe"] = _state["unsubscribe"], None
        if unsubscribe is not None:
            unsubscribe()


setting_changed.connect(_settings_changed, dispatch_uid="jwt_sessions_local_cache_settings")
