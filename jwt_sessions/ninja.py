"""django-ninja: `JWTSessionAuth()` for routers and operations, sync and async.

    api = NinjaAPI(auth=JWTSessionAuth())
    install(api)    # failures become 401/503 `{"detail", "code"}` with WWW-Authenticate

`request.auth` is the token's `AccessClaims`, `request.user` the lazy user (no SQL unless
more than its pk is read; `await request.auser()` loads it from async code). An async
operation checks the token with `aauthenticate` on the event loop; a sync one with the
sync check, in its own thread. Needs `pip install jwt_sessions[ninja]`.
"""
from __future__ import annotations

import asyncio
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError as NinjaAuthenticationError
from ninja.security import HttpBearer

from .authentication import KEYWORD, aload_user, bearer_token, lazy_user
from .dpop import doors as dpop
from .dpop.errors import DPoPError
from .exceptions import AuthenticationError, ServiceUnavailable
from .tokens import AccessClaims

__all__ = ["JWTSessionAuth", "install"]

_NOT_AUTHENTICATED = {"detail": _("Authentication credentials were not provided."),
                      "code": "not_authenticated"}


class JWTSessionAuth(HttpBearer):
    """Bearer access tokens of jwt_sessions; the OpenAPI scheme is `http`/`bearer`/JWT."""

    openapi_bearerFormat = "JWT"

    def __init__(self) -> None:
        super().__init__()
        # ninja awaits what an `is_async` auth returns in async operations, and takes a
        # plain value as it is in sync ones: one object serves both.
        self.is_async = True

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get(self.header)
        token = (bearer_token(header) or bearer_token(header, dpop.SCHEME)) if header else None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None if token is None else self.authenticate(request, token)
        return self._aauthenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> AccessClaims:
        return self._attach(request, dpop.authenticate(token, self._presented(request, token)))

    async def _aauthenticate(self, request: HttpRequest, token: str | None) -> Any:
        if token is None:
            return None
        return self._attach(request, await dpop.aauthenticate(token,
                                                              self._presented(request, token)))

    def _presented(self, request: HttpRequest, token: str) -> dpop.Presented:
        scheme = request.headers.get(self.header, "").split(" ", 1)[0]
        return dpop.presented_by_request(request, scheme, token)

    @staticmethod
    def _attach(request: HttpRequest, claims: AccessClaims) -> AccessClaims:
        user = lazy_user(claims)
        request.user = user  # type: ignore[assignment]  # a LazyUser stands in for one

        async def auser() -> Any:
            return await aload_user(user)

        request.auser = auser
        return claims


def _error(api: NinjaAPI, request: HttpRequest, status: int, body: Any,
           exc: Exception | None = None) -> HttpResponse:
    response = api.create_response(
        request, {"detail": str(body["detail"]), "code": str(body["code"])}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = (getattr(exc, "auth_header", None)
                                        or dpop.authenticate_header(request)
                                        or f'{KEYWORD} realm="api"')
    return dpop.add_nonce(response, exc) if isinstance(exc, DPoPError) else response


def install(api: NinjaAPI) -> None:
    """Register the handlers that answer jwt_sessions' failures (and ninja's own "no
    credentials") as the rest of jwt_sessions does: `{"detail", "code"}`, 401 with
    `WWW-Authenticate: Bearer`, 503 when the session store is unavailable under policy
    "deny"."""

    @api.exception_handler(AuthenticationError)
    def refused(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return _error(api, request, exc.status_code, exc.detail)

    @api.exception_handler(DPoPError)
    def refused_proof(request: HttpRequest, exc: DPoPError) -> HttpResponse:
        return _error(api, request, exc.status_code, exc.detail, exc)

    @api.exception_handler(ServiceUnavailable)
    def unavailable(request: HttpRequest, exc: ServiceUnavailable) -> HttpResponse:
        return _error(api, request, exc.status_code, exc.detail)

    @api.exception_handler(NinjaAuthenticationError)
    def not_authenticated(request: HttpRequest, exc: NinjaAuthenticationError) -> HttpResponse:
        return _error(api, request, 401, _NOT_AUTHENTICATED)
