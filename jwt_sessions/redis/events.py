"""Revocation events: every process hears at once that a session was revoked or a token
pair superseded, and knows when it may have missed something.

The store publishes each event in the same round trip as the change (inside its script or
pipeline). This module is the receiving side: one background thread per process, started
by the first `subscribe()`, holding a redis-py pub/sub subscription made with the
connection settings of `CACHE_ALIAS`. Consumers are callbacks; they run on that thread
and must be quick (an asyncio consumer hops to its loop with `loop.call_soon_threadsafe`).

A receiver proves its subscription alive: every `EVENTS_HEARTBEAT` it PUBLISHes a beat on
its own channel and listens for it. One subscription delivers messages in the order Redis
ran the PUBLISHes, so hearing back a beat sent at time t proves that every revocation that
returned before t has been delivered. `healthy()` holds while that proof is younger than
three heartbeats, and lapses by itself when beats stop coming back (a partition that drops
packets without closing anything). A "gap" event tells consumers to distrust what they
hold: sent when the subscription is lost, when a beat does not come back in time, when
Redis restarted (its run_id changed), and again once the subscription is (or first
is) made, so that consumers re-check what they hold from before.
"""
from __future__ import annotations

import logging
import math
import os
import secrets
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed

from .. import metrics
from ..conf import jwt_settings
from . import layout
from .client import REDIS_ERRORS, StoreUnavailable, clients
from .store import store

__all__ = ["REVOKED", "ROTATED", "GAP", "SessionEvent", "subscribe", "stop", "healthy",
           "proof_age", "wait_until_healthy"]

logger = logging.getLogger("jwt_sessions")

REVOKED, ROTATED, GAP = "revoked", "rotated", "gap"
_KINDS = {layout.EVENT_REVOKED: REVOKED, layout.EVENT_ROTATED: ROTATED}
# A beat not heard back within this many heartbeats ends trust in the subscription.
STALE_AFTER_BEATS = 3
# Beats go out at least this often, whatever EVENTS_HEARTBEAT says: open WebSockets
# trust the events only while the latest proof is younger than half a second.
_BEAT_AT_LEAST_EVERY = 0.25
_POLL = 0.05  # longest wait for a message: how soon the thread notices stop()
_MAX_BACKOFF = 2.0


@dataclass(frozen=True)
class SessionEvent:
    """Something a consumer must act on.

    `kind`: "revoked" (the session is over), "rotated" (its access token `access_jti`,
    None if unknown, is superseded) or "gap" (events may have been missed: `session_id`
    is None, and every consumer must distrust what it holds).
    """

    kind: str
    session_id: uuid.UUID | None
    access_jti: str | None = None


Consumer = Callable[[SessionEvent], None]
_consumers: list[Consumer] = []
_lock = threading.Lock()
_receiver: _Receiver | None = None


def subscribe(callback: Consumer) -> Callable[[], None]:
    """Register a consumer in this process (starts the receiver lazily); returns
    unsubscribe."""
    with _lock:
        _consumers.append(callback)
        _ensure_receiver()

    def unsubscribe() -> None:
        with _lock:
            if callback in _consumers:
                _consumers.remove(callback)

    return unsubscribe


def stop() -> None:
    """Stop the receiver cleanly (tests; process shutdown); consumers stay registered and
    the next `subscribe()` or `healthy()` starts a new receiver."""
    global _receiver
    with _lock:
        receiver, _receiver = _receiver, None
    if receiver is not None:
        receiver.stop()


def healthy() -> bool:
    """True while every revocation that returned more than three heartbeats ago is known
    to have been delivered to this process."""
    receiver = _receiver
    if receiver is None:
        if _consumers:
            with _lock:
                _ensure_receiver()
        return False
    return receiver.healthy()


def proof_age() -> float:
    """Seconds since the latest beat heard back was sent (infinite without one): every
    revocation that returned before then has been delivered to this process."""
    receiver = _receiver
    return math.inf if receiver is None else receiver.proof_age()


def drain() -> bool:
    """Hand over, on the calling thread, the events this process has received but not
    read yet. A check calls this before it trusts what it holds, so a revocation that
    has reached the process counts at once, even when the receiver's thread is waiting
    for a busy interpreter. False when that cannot be known now (no subscription, or
    the receiver is in the middle of a read): the caller must not trust what it holds,
    and asks Redis."""
    receiver = _receiver
    return receiver is not None and receiver.drain()


def wait_until_healthy(timeout: float) -> bool:
    """Block until `healthy()` (a fresh receiver needs one heartbeat's round trip)."""
    deadline = time.monotonic() + timeout
    while not healthy():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def _ensure_receiver() -> None:
    """Start a receiver if none runs (call with _lock held)."""
    global _receiver
    if _receiver is None:
        _receiver = _Receiver()
        _receiver.start()


def _dispatch(event: SessionEvent) -> None:
    for callback in list(_consumers):
        try:
            callback(event)
        except Exception:  # one broken consumer must not starve the others
            logger.exception("A jwt_sessions event consumer failed on %s", event.kind)


class _Lost(Exception):
    """The subscription can no longer be trusted; `reason` says why."""


class _Receiver(threading.Thread):
    """The background subscriber: reconnects with backoff, beats, hands events over."""

    def __init__(self) -> None:
        super().__init__(name="jwt_sessions-events", daemon=True)
        self.id = uuid.uuid4().hex[:16]
        heartbeat = jwt_settings.EVENTS_HEARTBEAT.total_seconds()
        self.interval = min(heartbeat, _BEAT_AT_LEAST_EVERY)
        self.stale_after = STALE_AFTER_BEATS * heartbeat
        self.events_channel = layout.events_channel().encode()
        self.heartbeat_channel = layout.heartbeat_channel(self.id).encode()
        self.client: Any = None
        self._stopping = threading.Event()
        self._proof: float | None = None  # send time of the latest beat heard back
        self._sent: dict[bytes, float] = {}  # beats not heard back yet -> send time
        self._run_id: str | None = None
        # Reading the subscription, by this thread or by a check (`drain`), is done
        # under this lock; waiting for data is not.
        self._read_lock = threading.Lock()
        self._pubsub: Any = None  # the confirmed subscription, for `drain`
        self._fault: str | None = None  # what a check's read ran into, for this thread
        # Set while a gap is owed to consumers: from the start too, since what they hold
        # from before this receiver (a stopped one, a settings change) is not covered.
        self._lost = True
        self._warned = False  # the current outage was logged
        self._subscribed_at = 0.0

    def healthy(self) -> bool:
        proof = self._proof
        return proof is not None and time.monotonic() - proof < self.stale_after

    def proof_age(self) -> float:
        proof = self._proof
        return math.inf if proof is None else time.monotonic() - proof

    def stop(self) -> None:
        self._stopping.set()
        if self is not threading.current_thread():
            self.join(timeout=5)

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        backoff = 0.05
        while not self._stopping.is_set():
            pubsub = None
            try:
                if self.client is None:
                    self.client = clients.for_events(self.stale_after)
                pubsub = self.client.pubsub()
                self._subscribe(pubsub)
                backoff = 0.05
                with self._read_lock:
                    self._pubsub, self._fault = pubsub, None
                self._listen(pubsub)
            except (_Lost, StoreUnavailable, *REDIS_ERRORS) as exc:
                if not self._stopping.is_set():
                    self._lose(str(exc) if isinstance(exc, _Lost)
                               else f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001 - the receiver must outlive any client bug
                if not self._stopping.is_set():
                    logger.exception("Revocation events: unexpected error")
                    self._lose(type(exc).__name__)
            finally:
                self._proof = None
                with self._read_lock:
                    self._pubsub = None
                if pubsub is not None:
                    _close(pubsub)
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _subscribe(self, pubsub: Any) -> None:
        """Subscribe to the events and our own beats; both confirmed, or _Lost."""
        pubsub.subscribe(self.events_channel, self.heartbeat_channel)
        waiting = {self.events_channel, self.heartbeat_channel}
        deadline = time.monotonic() + self.stale_after
        while waiting:
            if self._stopping.is_set():
                return
            if time.monotonic() > deadline:
                raise _Lost("subscription not confirmed")
            message = pubsub.get_message(timeout=_POLL)
            if message and message["type"] == "subscribe":
                waiting.discard(message["channel"])
        self._subscribed_at = time.monotonic()
        self._run_id = None  # a restart before now is covered by the gap below
        self._warned = False
        if self._lost:  # what happened meanwhile is unknown: consumers re-check now
            self._lost = False
            logger.info("Revocation events: subscribed; consumers resynchronise")
            _dispatch(SessionEvent(GAP, None))

    def _listen(self, pubsub: Any) -> None:
        next_beat = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= next_beat:
                self._beat(now)
                next_beat = now + self.interval
            if now - (self._proof or self._subscribed_at) > self.stale_after:
                raise _Lost("heartbeat not heard back")
            _wait_for_data(pubsub, max(0.0, min(_POLL, next_beat - now)))
            with self._read_lock:
                if self._fault is not None:
                    raise _Lost(self._fault)
                self._read_waiting(pubsub)

    def drain(self) -> bool:
        """`drain()` for this receiver, on the caller's thread."""
        pubsub = self._pubsub
        if (pubsub is not None and self._fault is None and not self._read_lock.locked()
                and _nothing_to_read(pubsub)):
            return True  # the common case: one zero-timeout poll, no lock
        # The receiver is reading: do not wait for it (that would wait for the GIL too);
        # the caller asks Redis instead, which already holds what the events announce.
        if not self._read_lock.acquire(blocking=False):
            return False
        try:
            if self._pubsub is None or self._fault is not None:
                return False
            self._read_waiting(self._pubsub)
            return True
        except Exception as exc:  # noqa: BLE001 - the receiver's thread handles it
            self._proof, self._fault = None, f"read by a check: {type(exc).__name__}"
            return False
        finally:
            self._read_lock.release()

    def _read_waiting(self, pubsub: Any) -> None:
        """Handle every message already received (call with the read lock held)."""
        while pubsub.connection is not None and pubsub.connection.can_read(timeout=0):
            message = pubsub.get_message(timeout=0)
            if message is not None:
                self._handle(message)

    def _beat(self, now: float) -> None:
        # Unguessable: someone who may publish on our channel (it is listed by PUBSUB
        # CHANNELS) cannot send a beat before we do, and one we sent proves only what
        # its own delivery proves.
        beat = secrets.token_bytes(16)
        self._sent = {b: at for b, at in self._sent.items() if now - at <= self.stale_after}
        self._sent[beat] = now
        try:
            run_id = store.publish_heartbeat(self.client, self.id, beat)
        except StoreUnavailable:
            return  # the beat will not come back: staleness decides
        if run_id is not None:
            if self._run_id is not None and run_id != self._run_id:
                self._run_id = run_id
                raise _Lost("Redis restarted (run_id changed)")
            self._run_id = run_id

    def _handle(self, message: dict) -> None:
        kind, channel = message["type"], message["channel"]
        if kind in ("subscribe", "unsubscribe"):
            # redis-py re-subscribed on a new connection behind our back: whatever was
            # published in between is lost.
            raise _Lost("subscription renewed by the client")
        if kind != "message":
            return
        if channel == self.heartbeat_channel:
            sent = self._sent.pop(message["data"], None)
            if sent is not None and (self._proof is None or sent > self._proof):
                self._proof = sent
            if sent is not None:
                metrics.event_delivered(time.monotonic() - sent)
            return
        if channel == self.events_channel:
            for event in _parse(message["data"]):
                _dispatch(event)

    def _lose(self, reason: str) -> None:
        self._proof = None
        if not self._warned:
            self._warned = True
            logger.warning("Revocation events: %s; consumers distrust what they hold until "
                           "the subscription is back", reason)
        if not self._lost:  # else a gap is owed already: still (re)connecting
            self._lost = True
            _dispatch(SessionEvent(GAP, None))


def _nothing_to_read(pubsub: Any) -> bool:
    """True if the subscription's socket holds nothing unread. Between two reads no
    complete message waits in the client's buffer (a read goes on while one does), so
    the socket alone tells; an in-memory stand-in cannot be polled: False."""
    sock = getattr(pubsub.connection, "_sock", None)
    if not isinstance(sock, socket.socket) or (isinstance(sock, ssl.SSLSocket)
                                               and sock.pending()):
        return False
    return not select.select([sock], [], [], 0)[0]


def _wait_for_data(pubsub: Any, timeout: float) -> None:
    """Wait until the subscription's socket has something to read, or `timeout`; holding
    no lock, so that a check may read it meanwhile (`drain`)."""
    connection = pubsub.connection
    sock = getattr(connection, "_sock", None)
    if not isinstance(sock, socket.socket):  # an in-memory stand-in
        connection.can_read(timeout=timeout)
    elif not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
        select.select([sock], [], [], timeout)


def _parse(data: bytes) -> list[SessionEvent]:
    try:
        kind, records = layout.parse_event(data)
    except ValueError:
        logger.warning("Revocation events: ignored a malformed message (%d bytes)",
                       len(data))
        return []
    return [SessionEvent(_KINDS[kind], session_id, jti) for session_id, jti in records]


def _close(pubsub: Any) -> None:
    try:
        pubsub.close()
    except REDIS_ERRORS:
        pass


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    """A new Redis (or prefix, or heartbeat): the old subscription says nothing of it, so
    consumers hear a gap and a new receiver subscribes with the new settings."""
    if setting in ("CACHES", "JWT_SESSIONS") and _receiver is not None:
        stop()
        _dispatch(SessionEvent(GAP, None))
        with _lock:
            if _consumers:
                _ensure_receiver()


def _forget_after_fork() -> None:
    """A forked child has no receiver thread, whatever its parent had."""
    global _receiver, _lock
    _receiver = None
    _lock = threading.Lock()


setting_changed.connect(_settings_changed, dispatch_uid="jwt_sessions_events_settings")
os.register_at_fork(after_in_child=_forget_after_fork)
