"""A project's own access-token claims (`name`, `roles`...): the `CLAIMS_HOOK` setting.

    JWT_SESSIONS = {"CLAIMS_HOOK": "myproject.auth.token_claims"}

    def token_claims(user, session_id) -> dict:
        roles = user.groups.values_list("name", flat=True)
        return {"name": user.get_full_name(), "roles": sorted(roles)}

The hook runs whenever an access token is signed (login, refresh, reauthentication),
with the session's user as already loaded for the flow (a refresh reads the user row
anyway, to check the credentials the session is bound to), so the hook costs no query
unless it makes its own (`user.groups`...). The claims come back to views as
`request.auth.extra`. Reserved claims (`sub`, `sid`, `jti`, `iat`,
`exp`, `nbf`, `token_type`, `iss`, `aud`, `auth_time`, `amr`) are ours: a hook that sets
one, returns something else than a dict, or raises, is a configuration error. It is
logged with its reason and answered as a 500 (`claims_hook_failed`, an
ImproperlyConfigured); the hook runs before anything is stored, so a login that fails
this way leaves no session and a refresh leaves its session as it was.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.utils.module_loading import import_string

from .conf import cached_per_settings, jwt_settings
from .exceptions import ClaimsHookFailed
from .tokens import RESERVED_CLAIMS

logger = logging.getLogger("jwt_sessions")

ClaimsHook = Callable[[Any, Any], Mapping[str, Any]]


@cached_per_settings
def claims_hook() -> ClaimsHook | None:
    """The configured hook (an import string or a callable), or None."""
    hook = jwt_settings.CLAIMS_HOOK
    return import_string(hook) if isinstance(hook, str) else hook


def extra_claims(user: Any, session_id: Any) -> dict[str, Any]:
    """The hook's claims for a token of `user`'s session; {} without a hook."""
    hook = claims_hook()
    if hook is None:
        return {}
    try:
        claims = hook(user, session_id)
    except Exception as exc:
        logger.exception("CLAIMS_HOOK raised for user %s; no token signed", user.pk)
        raise ClaimsHookFailed() from exc
    if not isinstance(claims, Mapping) or not all(isinstance(name, str) for name in claims):
        _refuse(user, "it must return a dict with string keys")
    clash = RESERVED_CLAIMS.intersection(claims)
    if clash:
        _refuse(user, f"it may not set the reserved claim(s) {', '.join(sorted(clash))}")
    return dict(claims)


def _refuse(user: Any, reason: str) -> None:
    logger.error("CLAIMS_HOOK refused for user %s: %s; no token signed", user.pk, reason)
    raise ClaimsHookFailed()

