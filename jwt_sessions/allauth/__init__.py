"""django-allauth's headless API on jwt_sessions sessions.

    HEADLESS_TOKEN_STRATEGY = "jwt_sessions.allauth.TokenStrategy"

Every login that allauth's headless API completes opens a jwt_sessions session (the
device list, the admin, instant revocation, WebSocket closing); allauth's
`tokens/refresh` rotates it, its logout ends it, and its reauthentication renews the
session's `auth_time` and `amr`. Needs `pip install jwt_sessions[allauth]`.
"""
from __future__ import annotations

try:
    import allauth.headless  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without allauth
    raise ImportError(
        "jwt_sessions.allauth needs django-allauth: pip install 'jwt_sessions[allauth]'"
    ) from exc

from .strategy import TokenStrategy

__all__ = ["TokenStrategy"]
