"""Channels: WebSocket handshakes authenticated by an access token, and sockets that close
(code 4401) when their session is revoked, in whichever process they are open.

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": JWTSessionAuthMiddleware(URLRouter(websocket_urlpatterns)),
    })

The token comes from `Authorization: Bearer <token>` (native clients) or, from a browser,
which cannot set headers on a WebSocket, from the subprotocol list
`["jwt_sessions", "jwt_sessions.bearer.<token>"]`: a header, so never in a URL or an
access log. The server answers with the subprotocol `jwt_sessions` (or the application's
own choice), never with the token, and the application sees neither the token entry nor
the header that carried it. `scope["user"]` is the lazy user, `scope["auth"]` the claims;
without any token, `AnonymousUser` and None, as in DRF. A bad, expired or revoked token,
or an ambiguous handshake, is refused before it is accepted (HTTP 403).

A socket lives exactly as long as its session: the handshake reads the session's row
with its user (the user rule and the credentials binding decide, as at refresh), and the
database is asked again, in one query per thousand sockets, whenever one of these comes:
- a revocation event naming its session: a hint, confirmed by the row before anything
  closes (a forged or replayed event costs one lookup and changes nothing);
- the expiry of the access token it opened with, then every ACCESS_TOKEN_LIFETIME: a user
  deactivated or whose password changed behind the ORM's back (`QuerySet.update`) is
  found then, as a refresh would find it;
- the session's own end (its idle expiry, or SESSION_MAX_LIFETIME);
- every half second while the events cannot be trusted (the latest heartbeat heard back
  is older than that: Redis paused, stopped, cut off or restarted; or a "gap").
Needs `pip install jwt_sessions[channels]`.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError

from . import events
from .authentication import MAX_TOKEN_LENGTH, bearer_token, lazy_user
from .conf import jwt_settings
from .dpop import doors as dpop
from .dpop.errors import DPoPError
from .exceptions import AuthenticationError, ServiceUnavailable, SessionRevoked, TokenInvalid
from .models import Session
from .services import credentials_hold
from .tokens import AccessClaims

__all__ = ["JWTSessionAuthMiddleware", "SUBPROTOCOL", "TOKEN_SUBPROTOCOL_PREFIX",
           "CLOSE_SESSION_REVOKED"]

logger = logging.getLogger("jwt_sessions")

SUBPROTOCOL = "jwt_sessions"
TOKEN_SUBPROTOCOL_PREFIX = "jwt_sessions.bearer."
CLOSE_SESSION_REVOKED = 4401
# A browser offers a handful of subprotocols; a longer list is not a client of ours.
MAX_SUBPROTOCOLS = 16
# Events remembered for sockets whose handshake was under way when they arrived.
_RECENT_EVENTS = 1024
_RECHECK_BATCH = 1000
# The events are trusted while the latest heartbeat heard back was sent less than this
# long ago; past it, every open socket is re-checked this often: a revocation whose
# event is lost is found within a second of it, whatever failed.
TRUST_WINDOW = 0.5
# How often each event loop looks for sockets due for a re-check.
_TICK = 0.1

Scope = dict[str, Any]
Message = dict[str, Any]


def handshake_token(scope: Scope) -> tuple[str | None, bool]:
    """(the token, whether it came as a subprotocol); (None, False) without any token.

    Raises TokenInvalid for anything ambiguous or malformed: two Authorization headers,
    a header and a subprotocol token, two token subprotocols, another scheme, a token
    subprotocol without `jwt_sessions` to answer with, an absurd subprotocol list.
    """
    headers = scope.get("headers") or ()
    authorization = [value for name, value in headers if name.lower() == b"authorization"]
    offered = list(scope.get("subprotocols") or ())
    if len(offered) > MAX_SUBPROTOCOLS:
        raise TokenInvalid("Too many subprotocols.")
    carried = [p for p in offered if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)]
    if len(authorization) + len(carried) > 1:
        raise TokenInvalid("A handshake carries one access token.")
    if authorization:
        header = authorization[0].decode("latin-1")
        token = bearer_token(header) or bearer_token(header, dpop.SCHEME)
        if token is None:
            raise TokenInvalid("The Authorization header must be 'Bearer <token>'.")
        return token, False
    if carried:
        token = carried[0][len(TOKEN_SUBPROTOCOL_PREFIX):]
        if SUBPROTOCOL not in offered or not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid("Offer the subprotocols 'jwt_sessions' and "
                               "'jwt_sessions.bearer.<token>'.")
        return token, True
    return None, False


def _without_token(scope: Scope) -> Scope:
    """The scope the application sees: no token entry, no header that carried it."""
    kept = [p for p in scope.get("subprotocols") or () if not
            p.startswith((TOKEN_SUBPROTOCOL_PREFIX, dpop.PROOF_SUBPROTOCOL_PREFIX))]
    headers = [(name, value) for name, value in scope.get("headers") or ()
               if name.lower() not in (b"authorization", b"sec-websocket-protocol", b"dpop")]
    if kept:
        headers.append((b"sec-websocket-protocol", ", ".join(kept).encode("latin-1")))
    return {**scope, "subprotocols": kept, "headers": headers}


class JWTSessionAuthMiddleware:
    """ASGI middleware for Channels' WebSocket routes (HTTP passes through untouched)."""

    def __init__(self, inner: Callable[..., Awaitable[None]]) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "websocket":
            return await self.inner(scope, receive, send)
        seq = open_sockets.prepare()
        try:
            token, as_subprotocol = handshake_token(scope)
            claims = None
            if token is not None:
                claims = await dpop.aauthenticate(token,
                                                  dpop.presented_by_handshake(scope, token))
            ends = None if claims is None else await _session_end(claims)
        except (AuthenticationError, DPoPError, ServiceUnavailable) as exc:
            logger.info("WebSocket handshake refused (%s)", exc.default_code)
            return await _refuse(receive, send)
        if claims is None or ends is None:
            return await self.inner({**scope, "user": AnonymousUser(), "auth": None},
                                    receive, send)
        return await self._serve(_without_token(scope), claims, ends, as_subprotocol, seq,
                                 receive, send)

    async def _serve(self, scope: Scope, claims: AccessClaims, ends: float,
                     as_subprotocol: bool, seq: int, receive: Callable,
                     send: Callable) -> None:
        socket = _Socket(claims.session_id, receive, send, as_subprotocol)
        socket.due = min(claims.expires_at.timestamp(), ends)
        open_sockets.add(socket, seq)
        try:
            await self.inner({**scope, "user": lazy_user(claims), "auth": claims},
                             socket.receive, socket.send)
        finally:
            open_sockets.discard(socket)
            socket.finish()


async def _session_end(claims: AccessClaims) -> float:
    """When the session of a live token ends (epoch seconds), as its row says, read with
    its user: a user the rule refuses, or whose credentials moved on, is refused here
    (`session_revoked`) as a refresh would refuse it."""
    ends = (await database_sync_to_async(_live_sessions)([claims.session_id])).get(
        claims.session_id)
    if ends is None:
        raise SessionRevoked()
    return ends


async def _refuse(receive: Callable, send: Callable) -> None:
    """Close before accepting: the server answers the handshake with HTTP 403."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": CLOSE_SESSION_REVOKED})


class _Socket:
    """One authenticated WebSocket: the application's receive and send, plus `revoke()`."""

    def __init__(self, session_id: uuid.UUID, receive: Callable, send: Callable,
                 as_subprotocol: bool) -> None:
        self.loop = asyncio.get_running_loop()
        self.session_id = session_id
        self._receive, self._send = receive, send
        self._as_subprotocol = as_subprotocol
        self._closed = False  # a close was sent, by the application or by us
        self._revoked = self.loop.create_future()
        self._pending: asyncio.Future | None = None
        self.due = 0.0  # when the database must be asked about it again (epoch seconds)

    async def receive(self) -> Message:
        if not self._revoked.done():
            if self._pending is None:
                self._pending = asyncio.ensure_future(self._receive())
            await asyncio.wait({self._pending, self._revoked},
                               return_when=asyncio.FIRST_COMPLETED)
            if self._pending.done():
                message, self._pending = self._pending.result(), None
                return message
        return {"type": "websocket.disconnect", "code": CLOSE_SESSION_REVOKED}

    async def send(self, message: Message) -> None:
        if self._closed:
            return  # we closed it on revocation: what the application says goes nowhere
        if message["type"] == "websocket.accept" and self._as_subprotocol:
            chosen = message.get("subprotocol")
            if chosen is None or chosen.startswith(TOKEN_SUBPROTOCOL_PREFIX):
                message = {**message, "subprotocol": SUBPROTOCOL}
        elif message["type"] == "websocket.close":
            self._closed = True
        await self._send(message)

    def revoke(self) -> None:
        """Close with 4401 and tell the application it is disconnected (on the loop)."""
        if self._revoked.done():
            return
        self._revoked.set_result(None)
        if not self._closed:
            self._closed = True
            _in_background(self._close())

    async def _close(self) -> None:
        try:
            await self._send({"type": "websocket.close", "code": CLOSE_SESSION_REVOKED})
        except Exception:  # noqa: BLE001 - the peer may be gone already; nothing to close
            logger.debug("WebSocket of session %s was gone before its close",
                         self.session_id)

    def finish(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        if not self._revoked.done():
            self._revoked.cancel()


class _OpenSockets:
    """This process's authenticated sockets by session, fed by the revocation events.

    Events arrive on the receiver's thread and only mark sockets for a re-check; each
    event loop's watcher asks the database and closes what has ended. A handshake that
    was being checked while an event arrived catches up through the last events, kept
    with sequence numbers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_session: dict[uuid.UUID, set[_Socket]] = {}
        self._recent: deque[tuple[int, events.SessionEvent]] = deque(maxlen=_RECENT_EVENTS)
        self._seq = 0
        self._unsubscribe: Callable[[], None] | None = None
        self._watchers: dict[asyncio.AbstractEventLoop, _Watcher] = {}

    def prepare(self) -> int:
        """Before a handshake's check: the event sequence now. Subscribes to the events
        on first use."""
        with self._lock:
            if self._unsubscribe is None:
                self._unsubscribe = events.subscribe(self._on_event)
            return self._seq

    def add(self, socket: _Socket, seq: int) -> None:
        with self._lock:
            self._by_session.setdefault(socket.session_id, set()).add(socket)
            missed = [event for number, event in self._recent if number > seq]
            overflowed = self._seq - seq > len(self._recent)
            watcher = self._watchers.get(socket.loop)
            if watcher is None or watcher.done():
                watcher = self._watchers[socket.loop] = _Watcher(socket.loop)
        if overflowed or any(e.kind == events.GAP or e.session_id == socket.session_id
                             for e in missed):
            watcher.suspect([socket])

    def discard(self, socket: _Socket) -> None:
        with self._lock:
            group = self._by_session.get(socket.session_id)
            if group is not None:
                group.discard(socket)
                if not group:
                    del self._by_session[socket.session_id]

    def sockets(self, loop: asyncio.AbstractEventLoop | None = None) -> list[_Socket]:
        with self._lock:
            return [socket for group in self._by_session.values() for socket in group
                    if loop is None or socket.loop is loop]

    def _on_event(self, event: events.SessionEvent) -> None:
        """On the receiver's thread: a hint for the watchers of the sockets it names."""
        if event.kind == events.ROTATED:
            return  # a socket may outlive its access token: only the session counts
        with self._lock:
            self._seq += 1
            self._recent.append((self._seq, event))
            if event.session_id is None:  # a gap: every socket
                named = [socket for group in self._by_session.values() for socket in group]
            else:
                named = list(self._by_session.get(event.session_id, ()))
            watchers = dict(self._watchers)
        for loop, group in _by_loop(named).items():
            watcher = watchers.get(loop)
            if watcher is not None:
                _call_soon(loop, functools.partial(watcher.suspect, group))


class _Watcher:
    """One event loop's re-checks: the sockets an event named, those whose token or
    session has reached its end, and all of them while the events cannot be trusted."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._suspects: set[_Socket] = set()
        self._wake = asyncio.Event()
        self._checked_all_at = time.monotonic()
        self._task = loop.create_task(self._run())

    def done(self) -> bool:
        return self._task.done()

    def suspect(self, sockets: Iterable[_Socket]) -> None:
        """On the loop: ask the database about these sockets now."""
        self._suspects.update(sockets)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), _TICK)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            sockets = open_sockets.sockets(self.loop)
            if not sockets:
                return  # the next socket on this loop starts a new watcher
            due = self._due(sockets)
            self._suspects.difference_update(due)
            if due:
                await self._recheck(due)

    def _due(self, sockets: list[_Socket]) -> list[_Socket]:
        started = time.monotonic()
        if (events.proof_age() >= TRUST_WINDOW
                and started - self._checked_all_at >= TRUST_WINDOW):
            self._checked_all_at = started
            return sockets
        now = time.time()
        return [s for s in sockets if s in self._suspects or s.due <= now]

    async def _recheck(self, sockets: list[_Socket]) -> None:
        """Close the sockets whose session has ended (one query per thousand sessions);
        the others are due again after ACCESS_TOKEN_LIFETIME, or at their session's end."""
        try:
            live = await database_sync_to_async(_live_sessions)(
                sorted({socket.session_id for socket in sockets}))
        except DatabaseError:
            logger.warning("Could not re-check %d WebSocket session(s): database "
                           "unavailable", len(sockets))
            self._suspects.update(sockets)  # asked again on the next tick
            return
        again = time.time() + jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()
        for socket in sockets:
            ends = live.get(socket.session_id)
            if ends is None:
                socket.revoke()
            else:
                socket.due = min(again, ends)


_background: set[asyncio.Task] = set()


def _in_background(coroutine: Awaitable[None]) -> None:
    """Run a coroutine on the current loop, holding a reference until it is done."""
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], Any]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        pass  # that loop has closed: its sockets are gone with it


def _by_loop(sockets: Iterable[_Socket]) -> dict[asyncio.AbstractEventLoop, list[_Socket]]:
    groups: dict[asyncio.AbstractEventLoop, list[_Socket]] = {}
    for socket in sockets:
        groups.setdefault(socket.loop, []).append(socket)
    return groups


def _live_sessions(session_ids: list[uuid.UUID]) -> dict[uuid.UUID, float]:
    """{session id: its end (epoch seconds)} of the sessions that live and whose user
    may still act; a session whose user the rule refuses, or whose password changed,
    is revoked here, as a refresh would revoke it."""
    live: dict[uuid.UUID, float] = {}
    for start in range(0, len(session_ids), _RECHECK_BATCH):
        batch = session_ids[start:start + _RECHECK_BATCH]
        for session in Session.objects.active().select_related("user").filter(pk__in=batch):
            if credentials_hold(session):
                live[session.pk] = session.expires_at.timestamp()
    return live


open_sockets = _OpenSockets()
