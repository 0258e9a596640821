"""Shared Signals test kit: keys, settings that turn it on, a SET signer that is not the
code under test (joserfc), a JWKS reader (joserfc too), and a local push receiver."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet

from tests.asgi_server import ROOT, free_port, uvicorn_server
from tests.redis_servers import require_redis_server, start_redis

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


def send_json(client_method, path, body, **extra):
    return client_method(path, data=json.dumps(body), content_type="application/json", **extra)


@pytest.fixture
def manager_token(api, stream_manager):
    return api.login_ok(stream_manager.username)["access"]


@pytest.fixture
def create_stream(manager_token):
    """Create a stream as the stream manager (poll by default); its SSF description."""
    from django.test import Client

    from tests.conftest import bearer, url

    def create(delivery: dict | None = None, **body):
        resp = send_json(Client().post, url("ssf_stream"),
                         {"delivery": delivery or {"method": POLL}, **body},
                         **bearer(manager_token))
        assert resp.status_code == 201, resp.content
        return resp.json()

    return create


# ------------------------------------------------------------------ a receiver process
B_AUDIENCE = "https://b.example.test/"
A_JWKS = {"keys": [{**ECKey.import_key(SET_PUBLIC).as_dict(private=False), "kid": "set-1"}]}


def _b_shared_signals() -> dict:
    private, public = ec_pem_pair()
    return {"ISSUER": B_AUDIENCE, "SIGNING_KEY": private, "VERIFYING_KEY": public,
            "TRANSMITTERS": [{"issuer": ISSUER, "jwks": A_JWKS, "audience": B_AUDIENCE}]}


class PeerB:
    """Receiver B: its own SQLite file, its own redis-server, restartable on one port."""

    def __init__(self, tmp_path) -> None:
        require_redis_server()
        self.redis = start_redis()
        self.database = f"sqlite:///{tmp_path / 'b.sqlite3'}"
        self.port, self.log_dir = free_port(), tmp_path
        self.env = {"DJANGO_SETTINGS_MODULE": "tests.ssf_settings",
                    "JWTS_SERVER_DATABASE_URL": self.database,
                    "JWTS_SERVER_REDIS_URL": self.redis.url,
                    "JWTS_SHARED_SIGNALS": json.dumps(_b_shared_signals())}
        self.run("-m", "django", "migrate", "-v", "0")
        self._server = None

    def run(self, *args: str) -> str:
        done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT), **self.env})
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def start(self) -> None:
        self._server = uvicorn_server(self.database, self.redis.url, self.log_dir,
                                      port=self.port, env=self.env)
        self._server.__enter__()

    def stop(self) -> None:
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None

    @property
    def receive_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/auth/ssf/receive/"

    def login(self, user) -> dict:
        return json.loads(self.run("-m", "tests.ssf_peer", "login", str(user.pk), user.username))

    def whoami(self, access: str) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/ninja/sync/whoami",
                                         headers={"Authorization": f"Bearer {access}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def close(self) -> None:
        self.stop()
        self.redis.close()
