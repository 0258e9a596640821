"""The floor: the least any Redis-checked JWT can cost. PyJWT decode + one Redis GET.

No settings lookups, no claims checks beyond PyJWT's, no statistics, no fallback: what is
left of an authenticated request once every avoidable cost is gone.
"""
from __future__ import annotations

from typing import Any

import jwt
from django.conf import settings
from django_redis import get_redis_connection
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

PREFIX = "fl:"
_state: dict[str, Any] = {}


def redis():
    if "redis" not in _state:
        _state["redis"] = get_redis_connection("default")
    return _state["redis"]


def issue(user_pk: int, jti: str, refresh_sha: str, ttl: int = 900) -> str:
    """A floor token and its two Redis keys (access -> user, refresh -> access)."""
    pipe = redis().pipeline(transaction=False)
    pipe.set(f"{PREFIX}a:{jti}", user_pk, ex=ttl)
    pipe.set(f"{PREFIX}r:{refresh_sha}", jti, ex=30 * 86400)
    pipe.execute()
    return jwt.encode({"sub": str(user_pk), "jti": jti}, settings.SECRET_KEY, "HS256")


class FloorUser:
    is_authenticated = True
    is_anonymous = False

    def __init__(self, pk: str) -> None:
        self.pk = self.id = pk


class FloorAuthentication(BaseAuthentication):
    def authenticate(self, request: Any):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Bearer "):
            return None
        try:
            claims = jwt.decode(header[7:], settings.SECRET_KEY, algorithms=["HS256"])
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed() from exc
        if redis().get(f"{PREFIX}a:{claims['jti']}") is None:
            raise AuthenticationFailed()
        return FloorUser(claims["sub"]), claims
