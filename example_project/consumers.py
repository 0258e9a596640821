"""The WebSocket of the "your devices" page: open for as long as its session lives.

JWTSessionAuthMiddleware (see asgi.py) authenticated the handshake and closes the socket
with code 4401 when the session is revoked, from whatever device or process.
"""
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class SessionConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        claims = self.scope["auth"]
        if claims is None:  # no token at all: this socket is for signed-in users only
            await self.close()
            return
        await self.accept()
        await self.send_json({"type": "session", "session_id": str(claims.session_id),
                              "user_id": self.scope["user"].pk})

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
