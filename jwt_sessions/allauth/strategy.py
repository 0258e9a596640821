"""`TokenStrategy`: allauth's headless token strategy, issuing jwt_sessions tokens."""
from __future__ import annotations

import math
from typing import Any

from allauth.account.internal.flows.login import get_authentication_records
from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.core.ratelimit import respond_429
from allauth.headless.base.response import APIResponse
from allauth.headless.internal.sessionkit import lookup_session
from allauth.headless.tokens.strategies.sessions import SessionTokenStrategy
from django.contrib.auth import SESSION_KEY, get_user_model, logout
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.exceptions import APIException

from .. import services
from ..authentication import bearer_token
from ..dpop import doors as dpop
from ..dpop.errors import DPoPError
from ..exceptions import (
    AuthenticationError,
    ClaimsHookFailed,
    MaxSessionsReached,
    ServiceUnavailable,
)
from ..refresh import refresh_tokens
from ..throttling import RefreshRateThrottle
from . import links, receivers
from .methods import amr_of

__all__ = ["TokenStrategy"]

receivers.connect()

# On a request whose login opened a session: (user pk, the answer's token payload).
_OPENED = "_jwt_sessions_allauth_opened"
# On a request with a Bearer token: the key of the Django session it stands for, or None.
_BY_BEARER = "_jwt_sessions_allauth_by_bearer"


class TokenStrategy(SessionTokenStrategy):
    """Each completed headless login opens a jwt_sessions session (with the client's
    device and address); the answer's `meta` carries `access_token`, `refresh_token` and
    `expires_in`, as allauth's own JWT strategy and clients expect. allauth's session
    token still names the allauth session that carries its flows (allauth's session
    strategy makes it)."""

    def get_session_token(self, request: HttpRequest) -> str | None:
        """allauth's session token (`X-Session-Token`); or, as with allauth's JWT
        strategy, a jwt_sessions access token (`Authorization: Bearer`) of a session that
        an allauth login opened, which stands for that login's session token. An access
        token never reveals the session token, and a revoked one stands for nothing."""
        token = super().get_session_token(request)
        if token:
            return token
        if _BY_BEARER not in request.__dict__:
            request.__dict__[_BY_BEARER] = _session_key_of_bearer(request)
        return request.__dict__[_BY_BEARER]

    def lookup_session(self, session_token: str) -> SessionBase | None:
        """allauth's session, unless the jwt_sessions session it opened has ended: an
        allauth session outlives neither a revocation nor an expiry (allauth then
        answers 410, and the app signs in again). A token with a control character
        (NUL, which PostgreSQL's text cannot hold) names no session."""
        if not session_token.isprintable():
            return None
        session = lookup_session(session_token)
        if session is None:
            return None
        session_id = links.linked_session_id(session)
        if session_id is not None and not links.is_live(session_id, _user_id(session)):
            session.delete()
            return None
        return session

    def create_access_token_payload(self, request: HttpRequest) -> dict[str, Any] | None:
        """The pair of the session this login opens: once per request, however many
        answers allauth builds on its way (completing an MFA stage builds two)."""
        user = request.user
        if not user.is_authenticated:
            return None
        opened = request.__dict__.get(_OPENED)
        if opened is None or opened[0] != user.pk:
            try:
                payload = self._open_session(request, user)
            except (AuthenticationError, ClaimsHookFailed, DPoPError, MaxSessionsReached,
                    ServiceUnavailable) as exc:
                # The credentials changed meanwhile, the DPoP proof, the session cap, the
                # store or the claims hook refuses: the allauth login must not outlive
                # the session it could not open.
                logout(request)
                raise ImmediateHttpResponse(_refusal(request, exc)) from exc
            opened = request.__dict__[_OPENED] = (user.pk, payload)
        return dict(opened[1])

    def _open_session(self, request: HttpRequest, user: Any) -> dict[str, Any]:
        amr = amr_of(get_authentication_records(request, user))
        # allauth's login already sent `user_logged_in`; a DPoP proof binds the session.
        pair = services.issue_tokens(user, request, amr=amr, login_signal=False,
                                     dpop_jkt=dpop.key_of_token_request(request).spend())
        links.link(request.session, pair.session_id)
        return {"access_token": pair.access, "refresh_token": pair.refresh,
                "expires_in": _seconds_until(pair.access_expires_at)}

    def refresh_token(self, refresh_token: str) -> tuple[str, str] | None:
        """A new pair for the same session; the previous access token is then refused
        (`token_invalid`). None (allauth's 400) for a token that is not live. Throttled
        as jwt_sessions' own refresh is (`jwt_sessions_refresh`, per client address)."""
        request = context.request
        try:
            throttle = RefreshRateThrottle()
            if not throttle.allow_request(request, None):
                raise ImmediateHttpResponse(_too_many(request, throttle.wait()))
            pair = refresh_tokens(refresh_token, request,
                                  dpop_jkt=dpop.key_of_token_request(request).spend())
        except (ClaimsHookFailed, DPoPError, ServiceUnavailable) as exc:
            raise ImmediateHttpResponse(_refusal(request, exc)) from exc
        except AuthenticationError:
            return None
        return pair.access, pair.refresh


def _too_many(request: HttpRequest, wait: float | None) -> HttpResponse:
    response = respond_429(request)
    if wait is not None:
        response["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def _refusal(request: HttpRequest, exc: APIException) -> HttpResponse:
    """One of our errors (401, 403, 500, 503) as an allauth answer, with jwt_sessions' code."""
    detail: dict[Any, Any] = exc.detail if isinstance(exc.detail, dict) else {}
    error = {"message": str(detail.get("detail", "")), "code": str(detail.get("code", ""))}
    return APIResponse(request, errors=[error], status=exc.status_code)


def _session_key_of_bearer(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    try:
        raw = bearer_token(header) or bearer_token(header, dpop.SCHEME)
        claims = None if raw is None else dpop.authenticate(
            raw, dpop.presented_by_request(request, header.split()[0], raw))
    except (AuthenticationError, DPoPError, ServiceUnavailable):
        return None
    if claims is None:
        return None
    key = links.session_key_for(claims.session_id)
    session = lookup_session(key) if key else None
    if session is None or links.linked_session_id(session) != claims.session_id \
            or str(_user_id(session)) != claims.user_id:
        return None
    return key


def _user_id(django_session: SessionBase) -> Any:
    """The pk of the user the Django session is signed in as (no query)."""
    value = django_session.get(SESSION_KEY)
    try:
        return get_user_model()._meta.pk.to_python(value) if value is not None else None
    except ValidationError:  # a malformed pk signs in no one
        return None


def _seconds_until(moment: Any) -> int:
    return max(0, int((moment - timezone.now()).total_seconds()))
