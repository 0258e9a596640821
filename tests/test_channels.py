"""JWTSessionAuthMiddleware in-process (Channels' WebsocketCommunicator): what the
application sees of the handshake, the accepted subprotocol, and revocations that arrive
while a handshake is being checked."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from jwt_sessions import events
from jwt_sessions.channels import (
    CLOSE_SESSION_REVOKED,
    JWTSessionAuthMiddleware,
    handshake_token,
    open_sockets,
)
from jwt_sessions.exceptions import TokenInvalid
from jwt_sessions.redis.store import astore

pytestmark = pytest.mark.django_db(transaction=True)

seen: list[dict] = []


class Recorder(AsyncWebsocketConsumer):
    """Accepts (with the subprotocol `chosen` names, if any) and records its scope."""

    chosen: str | None = None

    async def connect(self):
        seen.append(self.scope)
        await self.accept(self.chosen)

    async def disconnect(self, code):
        seen.append({"disconnect": code})


class EchoingTheToken(Recorder):
    async def connect(self):
        seen.append(self.scope)
        await self.accept(self.scope["subprotocols"][-1] if self.scope["subprotocols"]
                          else "jwt_sessions.bearer.leak")


def app(consumer=Recorder):
    return JWTSessionAuthMiddleware(URLRouter([path("ws/", consumer.as_asgi())]))


def handshake(access: str | None, consumer=Recorder, subprotocols=None, headers=None,
              then=None):
    """Connect; run `then(communicator)` while connected; return (connected, subprotocol,
    what `then` returned)."""
    async def run():
        offered = subprotocols
        if access is not None and offered is None:
            offered = ["jwt_sessions", f"jwt_sessions.bearer.{access}"]
        communicator = WebsocketCommunicator(app(consumer), "/ws/", headers=headers or [],
                                             subprotocols=offered)
        try:
            connected, subprotocol = await communicator.connect(timeout=5)
            result = await then(communicator) if then and connected else None
            await communicator.disconnect()
            return connected, subprotocol, result
        finally:
            await astore.aclose()

    seen.clear()
    return async_to_sync(run)()


def test_the_application_never_sees_the_token(tokens):
    connected, subprotocol, _ = handshake(
        tokens["access"], subprotocols=["chat", "jwt_sessions",
                                        f"jwt_sessions.bearer.{tokens['access']}"],
        headers=[(b"origin", b"http://testserver")])
    assert connected and subprotocol == "jwt_sessions"
    scope = seen[0]
    assert scope["subprotocols"] == ["chat", "jwt_sessions"]
    assert tokens["access"] not in repr(scope["headers"])
    assert (b"origin", b"http://testserver") in scope["headers"]
    assert str(scope["auth"].session_id) == tokens["session_id"]
    assert scope["user"].is_authenticated


def test_the_applications_own_subprotocol_is_kept(tokens):
    class Chat(Recorder):
        chosen = "chat"

    _, subprotocol, _ = handshake(tokens["access"], Chat, subprotocols=[
        "chat", "jwt_sessions", f"jwt_sessions.bearer.{tokens['access']}"])
    assert subprotocol == "chat"


def test_a_consumer_echoing_the_token_entry_is_overruled(tokens):
    _, subprotocol, _ = handshake(tokens["access"], EchoingTheToken)
    assert subprotocol == "jwt_sessions"


def test_header_handshake_hides_the_header(tokens):
    connected, subprotocol, _ = handshake(
        None, headers=[(b"authorization", f"Bearer {tokens['access']}".encode())])
    assert connected and subprotocol is None
    assert b"authorization" not in dict(seen[0]["headers"])


def test_no_token_is_anonymous():
    connected, _, _ = handshake(None)
    assert connected
    assert seen[0]["auth"] is None and seen[0]["user"].is_anonymous


@pytest.mark.parametrize("scope", [
    {"headers": [(b"authorization", b"Bearer a b")]},
    {"headers": [(b"authorization", b"\xff\xfe Bearer")]},
    {"headers": [(b"authorization", b"Token abc")]},
    {"subprotocols": ["jwt_sessions.bearer.abc"]},
    {"subprotocols": ["jwt_sessions", "jwt_sessions.bearer." + "a" * 9000]},
    {"subprotocols": ["jwt_sessions"] + ["x"] * 17},
])
def test_malformed_handshakes_raise_token_invalid(scope):
    with pytest.raises(TokenInvalid):
        handshake_token({"type": "websocket", **scope})


def test_revocation_closes_with_4401_and_tells_the_consumer(api, tokens):
    async def revoke_and_wait(communicator):
        await asyncio.get_running_loop().run_in_executor(None, events.wait_until_healthy, 5)
        from asgiref.sync import sync_to_async

        await sync_to_async(api.logout)(tokens["access"])
        return await communicator.receive_output(timeout=2)

    connected, _, closed = handshake(tokens["access"], then=revoke_and_wait)
    assert connected
    assert closed == {"type": "websocket.close", "code": CLOSE_SESSION_REVOKED}
    assert {"disconnect": CLOSE_SESSION_REVOKED} in seen


def test_an_event_that_arrives_during_the_handshake_check_is_not_lost():
    """The event lands between the check (Redis said live) and the registration."""
    async def run():
        loop = asyncio.get_running_loop()
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        async def receive():
            await asyncio.sleep(10)

        from jwt_sessions.channels import _Socket

        session_id = uuid.uuid4()
        seq = open_sockets.prepare()
        await loop.run_in_executor(None, open_sockets._on_event,
                                   events.SessionEvent(events.REVOKED, session_id))
        socket = _Socket(session_id, receive, send, False)
        socket.due = time.time() + 3600  # nothing but the missed event makes it look
        open_sockets.add(socket, seq)
        message = await asyncio.wait_for(socket.receive(), 1)
        await asyncio.sleep(0.05)
        open_sockets.discard(socket)
        socket.finish()
        return message, sent

    message, sent = async_to_sync(run)()
    assert message == {"type": "websocket.disconnect", "code": CLOSE_SESSION_REVOKED}
    assert sent == [{"type": "websocket.close", "code": CLOSE_SESSION_REVOKED}]


def test_a_gap_rechecks_open_sockets_against_the_database(api, tokens):
    """A revocation Redis never published (the receiver was cut): the gap re-check finds
    it in the database."""
    from jwt_sessions.models import Session

    async def revoke_silently_then_gap(communicator):
        from asgiref.sync import sync_to_async
        from django.utils import timezone

        await sync_to_async(Session.objects.filter(pk=tokens["session_id"]).update)(
            revoked_at=timezone.now(), revoked_reason="api")  # no event at all
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, open_sockets._on_event,
                                   events.SessionEvent(events.GAP, None))
        return await communicator.receive_output(timeout=3)

    connected, _, closed = handshake(tokens["access"], then=revoke_silently_then_gap)
    assert connected
    assert closed == {"type": "websocket.close", "code": CLOSE_SESSION_REVOKED}
