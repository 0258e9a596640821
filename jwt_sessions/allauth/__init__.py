"""django-allauth's headless API on jwt_sessions sessions.

    HEADLESS_TOKEN_STRATEGY = "jwt_sessions.allauth.TokenStrategy"

Every login that allauth's headless API completes opens a jwt_sessions session (the
device list, the admin, instant revocation, WebSocket closing); allauth's
`tokens/refresh` rotates it, its logout ends it, and its reauthentication renews the
session's `auth_time` and `amr`. Needs `pip install jwt_sessions[allauth]`.

`TokenStrategy` is imported when first named: a project with allauth but without its
headless API still has jwt_sessions' own login ask allauth's login rules
(`login_rules`), and connects none of the strategy's receivers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import allauth.account  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without allauth
    raise ImportError(
        "jwt_sessions.allauth needs django-allauth: pip install 'jwt_sessions[allauth]'"
    ) from exc

if TYPE_CHECKING:
    from .strategy import TokenStrategy

__all__ = ["TokenStrategy"]


def __getattr__(name: str) -> Any:
    if name == "TokenStrategy":
        from .strategy import TokenStrategy

        return TokenStrategy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
