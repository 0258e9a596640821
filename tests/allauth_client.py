"""A client of django-allauth's headless API (the app client: tokens in the body)."""
from __future__ import annotations

import json

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.test import Client

from tests.conftest import PASSWORD, UA_IPHONE, bearer, next_ip

PREFIX = "/_allauth/app/v1"


class Headless:
    """One app install: it keeps allauth's session token and the jwt_sessions pair."""

    def __init__(self, ua: str = UA_IPHONE) -> None:
        self.client = Client()
        self.ip = next_ip()
        self.ua = ua
        self.session_token: str | None = None
        self.access: str | None = None
        self.refresh: str | None = None

    def call(self, method: str, path: str, body=None, **extra):
        headers = {"HTTP_USER_AGENT": self.ua, "REMOTE_ADDR": self.ip, **extra}
        if self.session_token:
            headers.setdefault("HTTP_X_SESSION_TOKEN", self.session_token)
        send = getattr(self.client, method)
        if body is None:
            resp = send(PREFIX + path, **headers)
        else:
            resp = send(PREFIX + path, data=json.dumps(body), content_type="application/json",
                        **headers)
        meta = resp.json().get("meta", {}) if resp.content else {}
        self.session_token = meta.get("session_token", self.session_token)
        if "access_token" in meta:
            self.access, self.refresh = meta["access_token"], meta.get("refresh_token")
        return resp

    def login(self, username: str, password: str = PASSWORD):
        return self.call("post", "/auth/login", {"username": username, "password": password})

    def signup(self, username: str, password: str = PASSWORD):
        return self.call("post", "/auth/signup", {"username": username, "password": password})

    def mfa_authenticate(self, code: str):
        return self.call("post", "/auth/2fa/authenticate", {"code": code})

    def reauthenticate(self, password: str = PASSWORD):
        return self.call("post", "/auth/reauthenticate", {"password": password})

    def mfa_reauthenticate(self, code: str):
        return self.call("post", "/auth/2fa/reauthenticate", {"code": code})

    def refresh_tokens(self, token: str | None = None):
        body = {"refresh_token": self.refresh if token is None else token}
        resp = self.call("post", "/tokens/refresh", body)
        if resp.status_code == 200:
            data = resp.json()["data"]
            self.access = data["access_token"]
            self.refresh = data.get("refresh_token", self.refresh)
        return resp

    def logout(self):
        return self.call("delete", "/auth/session")

    def session(self, **extra):
        return self.call("get", "/auth/session", **extra)

    def api(self, path: str, access: str | None = None, method: str = "get"):
        """The project's own API (a DRF view), with the jwt_sessions access token."""
        return getattr(self.client, method)(path, **bearer(access or self.access))


def activate_totp(user) -> str:
    """Give `user` a TOTP authenticator; returns its secret."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    return secret


def totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))
