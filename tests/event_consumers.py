"""A consumer of the revocation events that tests can wait on."""
from __future__ import annotations

import threading
import uuid

from jwt_sessions import events


class Heard:
    """The events one consumer received, with a way to wait for more."""

    def __init__(self) -> None:
        self.events: list[events.SessionEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: events.SessionEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = 5.0,
                 count: int = 1) -> list[events.SessionEvent]:
        """The matching events, once at least `count` of them have arrived."""
        with self._changed:
            assert self._changed.wait_for(
                lambda: sum(map(predicate, self.events)) >= count, timeout), \
                f"fewer than {count} matching event(s) in {self.events}"
        return [event for event in self.events if predicate(event)]

    def about(self, session_id) -> list[events.SessionEvent]:
        with self._changed:
            return [e for e in self.events if e.session_id == uuid.UUID(str(session_id))]


def is_event(kind: str, session_id=None, jti=None):
    sid = None if session_id is None else uuid.UUID(str(session_id))
    return lambda e: (e.kind == kind and (sid is None or e.session_id == sid)
                      and (jti is None or e.access_jti == jti))
