"""Shared Signals test kit: keys, settings that turn it on, a SET signer that is not the
code under test (joserfc), a JWKS reader (joserfc too), and a local push receiver."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet

ISSUER = "https://auth.example.test/"
PEER = "https://peer.example.test/"  # a transmitter whose SETs we receive
PEER_AUDIENCE = "https://auth.example.test/receiver"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_PURGED = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"


def ec_pem_pair() -> tuple[str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    return (private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode(),
            private.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo).decode())


SET_PRIVATE, SET_PUBLIC = ec_pem_pair()
PEER_KEY = ECKey.generate_key("P-256", parameters={"kid": "peer-1"})


def peer_jwks(key: ECKey = PEER_KEY) -> dict:
    return {"keys": [key.as_dict(private=False)]}


def shared_signals(**extra: Any) -> dict:
    return {"ISSUER": ISSUER, "SIGNING_KEY": SET_PRIVATE, "VERIFYING_KEY": SET_PUBLIC,
            "KEY_ID": "set-1", "RETRY_INTERVAL": 0.05, "PUSH_TIMEOUT": 2,
            "TRANSMITTERS": [{"issuer": PEER, "jwks": peer_jwks(), "audience": PEER_AUDIENCE}],
            **extra}


@pytest.fixture
def ssf_on(settings):
    """Shared Signals on, with an ES256 SET key beside the suite's HS256 access tokens."""
    from jwt_sessions.shared_signals import jwks
    from jwt_sessions.shared_signals.pusher import pusher

    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "SHARED_SIGNALS": shared_signals()}
    jwks.forget()
    yield
    pusher.stop()


def verify_with_jwks(token: str, jwks: dict) -> tuple[dict, dict]:
    """(header, claims) of a SET verified by joserfc against a JWKS (not PyJWT)."""
    decoded = jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256", "RS256"])
    return dict(decoded.header), dict(decoded.claims)


def peer_set(events: dict, sub_id: dict | None = None, *, key: ECKey = PEER_KEY,
             iss: str = PEER, aud: Any = PEER_AUDIENCE, jti: str | None = None,
             typ: str = "secevent+jwt", iat: int | None = None) -> str:
    """A SET from the peer transmitter, signed by joserfc."""
    import secrets
    import time

    claims = {"iss": iss, "aud": aud, "jti": jti or secrets.token_hex(8),
              "iat": int(time.time()) if iat is None else iat, "events": events}
    if sub_id is not None:
        claims["sub_id"] = sub_id
    header = {"alg": "ES256", "typ": typ, "kid": key.kid}
    return jose_jwt.encode(header, claims, key)


class PushReceiver:
    """A local HTTP endpoint that records pushed SETs and answers `status`."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 202
        self.body = b""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                outer.received.append({"body": self.rfile.read(length).decode(),
                                       "headers": dict(self.headers)})
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def refuse(self, err: str) -> None:
        self.status = 400
        self.body = json.dumps({"err": err, "description": "no"}).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def push_receiver():
    receiver = PushReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def stream_manager(make_user):
    """An account allowed to manage streams."""
    from django.contrib.auth.models import Permission

    account = make_user()
    account.user_permissions.add(Permission.objects.get(
        content_type__app_label="jwt_sessions", codename="manage_ssf_stream"))
    return account
