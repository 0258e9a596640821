"""The HTTP API: thin DRF views over the flows (`services`, `refresh`).

Each view is small and made of DRF's own hooks (`serializer_class`, `throttle_classes`,
`permission_classes`) plus `TokenView.token_response`, so a project customises by
subclassing and overriding one of them, not by copying a view.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, NoReturn, cast

from django.contrib.auth import authenticate, get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import generics, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from . import gateway, introspection, pairs, refresh, services
from .authentication import JWTSessionAuthentication
from .clients import client_ip
from .cookies import (
    clear_refresh_cookie,
    cookie_mode,
    refresh_from_cookie,
    set_refresh_cookie,
)
from .credentials import may_act, password_login_refusal
from .dpop.doors import add_nonce, key_of_token_request
from .dpop.errors import DPoPError
from .exceptions import (
    InvalidCredentials,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RefreshTokenInvalid,
    RefreshTokenMissing,
    RefreshTokenReused,
    SessionRevoked,
    Throttled,
)
from .models import RevokeReason, Session
from .parsers import FormParser, JSONParser
from .permissions import CanIntrospect
from .serializers import (
    LoginSerializer,
    LogoutAllSerializer,
    LogoutSerializer,
    ReauthenticateSerializer,
    RefreshSerializer,
    SessionSerializer,
    TokenSerializer,
)
from .session_caps import cap_headers
from .text import has_control_characters
from .throttling import (
    BasicAddressRateThrottle,
    BasicUserRateThrottle,
    IntrospectRateThrottle,
    LoginRateThrottle,
    LoginUserRateThrottle,
    ReauthenticateUserRateThrottle,
    RefreshRateThrottle,
    basic_username,
    give_back_slots,
    presents_basic_credentials,
)
from .tokens import AccessClaims, jwks

logger = logging.getLogger("jwt_sessions")


class JWTSessionsView(generics.GenericAPIView):
    """Base of our views: Bearer auth, our error codes, `WWW-Authenticate` on 401.

    A GenericAPIView for its `get_serializer()`: a subclass swaps `serializer_class` (or
    overrides `get_serializer_class`) and gets the request in the serializer's context.
    """

    authentication_classes = [JWTSessionAuthentication]
    permission_classes = [IsAuthenticated]
    # JSON only: a cross-site HTML form cannot post JSON without a CORS
    # preflight, so no login or logout can be forged from another site's form.
    parser_classes = [JSONParser]

    def get_authenticate_header(self, request: Request) -> str:
        return JWTSessionAuthentication().authenticate_header(request)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        return add_nonce(response, exc) if isinstance(exc, DPoPError) else response

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        give_back_slots(request)  # a refused request tried nothing: it takes no slot
        raise Throttled(wait)

    @staticmethod
    def claims(request: Request) -> AccessClaims:
        """The verified claims of the calling access token (`request.auth`)."""
        return cast(AccessClaims, request.auth)

    def permission_denied(self, request: Request, message: Any = None, code: Any = None):
        if request.authenticators and not request.successful_authenticator:
            raise NotAuthenticated()
        raise PermissionDenied(message)


class TokenView(JWTSessionsView):
    """Shared answer of login and refresh: the pair, with the refresh in a cookie if set."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def token_response(self, pair: pairs.TokenPair) -> Response:
        data = pair.as_dict()
        response = add_nonce(Response(data, status=status.HTTP_200_OK))
        if set_refresh_cookie(self.request, response, pair):
            del data["refresh"]
        return response


class LoginView(TokenView):
    """POST {username, password} -> a new session's token pair; beside django-allauth,
    only for a user whom allauth too would let in on the password alone."""

    serializer_class = LoginSerializer
    throttle_classes = [LoginRateThrottle, LoginUserRateThrottle]

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        proved_key = key_of_token_request(request)  # a bad proof costs no password check
        user = authenticate(request._request, **serializer.validated_data)
        if user is None:
            logger.info("Login failed from %s", client_ip(request))
            raise InvalidCredentials()
        refused = password_login_refusal(user)
        if refused is not None:  # keeps its throttle slot, as a failed login does
            logger.info("Login of user %s refused: %s", user.pk, refused.default_code)
            raise refused
        return self.token_response(services.issue_tokens(
            user, request, amr=[pairs.AMR_PASSWORD], dpop_jkt=proved_key.spend()))


class ClearsDeadRefreshCookie:
    """A view mixin: an answer saying the refresh token is dead also drops its cookie."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)  # type: ignore[misc]
        if isinstance(exc, (SessionRevoked, RefreshTokenReused, RefreshTokenInvalid)):
            clear_refresh_cookie(self.request, response)  # type: ignore[attr-defined]
        return response


class RefreshView(ClearsDeadRefreshCookie, TokenView):
    """POST {refresh} (or the refresh cookie) -> a new pair; the old refresh dies."""

    serializer_class = RefreshSerializer
    throttle_classes = [RefreshRateThrottle]

    def post(self, request: Request) -> Response:
        token = None
        if self.get_serializer_class() is RefreshSerializer:  # a subclass's may add rules
            token = RefreshSerializer.plainly_valid_refresh(request.data)
        if token is None:
            serializer = self.get_serializer(data=request.data, required=not cookie_mode())
            serializer.is_valid(raise_exception=True)
            token = serializer.validated_data.get("refresh")
        if token is None:
            token = refresh_from_cookie(request)
        if token is None:  # cookie mode: no cookie is no session, not a field error
            raise RefreshTokenMissing()
        return self.token_response(refresh.refresh_tokens(
            token, request, dpop_jkt=key_of_token_request(request).spend()))


class LogoutView(ClearsDeadRefreshCookie, JWTSessionsView):
    """POST -> 204; the calling session is revoked, and the refresh cookie cleared.

    With a Bearer token: that token's session. In cookie mode without one: the session
    whose current refresh token is in the cookie, after a CSRF check (a cookie is sent
    by the browser on its own, so it proves nothing about who asked).
    """

    permission_classes = [AllowAny]
    serializer_class = LogoutSerializer

    def post(self, request: Request) -> Response:
        if request.auth is not None:
            services.revoke_session(self.claims(request).session_id, RevokeReason.LOGOUT)
        else:
            token = refresh_from_cookie(request)
            if token is None:
                raise NotAuthenticated()
            services.revoke_by_refresh_token(token, RevokeReason.LOGOUT)
        response = Response(status=status.HTTP_204_NO_CONTENT)
        clear_refresh_cookie(request, response)
        return response


class LogoutAllView(JWTSessionsView):
    """POST {keep_current?} -> 204; every session of the user is revoked."""

    serializer_class = LogoutAllSerializer

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        current = self.claims(request).session_id
        keep = current if serializer.validated_data["keep_current"] else None
        services.revoke_user_sessions(request.user.pk, RevokeReason.LOGOUT_ALL,
                                      keep_session_id=keep)
        response = Response(status=status.HTTP_204_NO_CONTENT)
        if keep is None:
            clear_refresh_cookie(request, response)
        return response


class SessionListView(JWTSessionsView, generics.ListAPIView):
    """GET -> the user's active sessions, most recently active first."""

    serializer_class = SessionSerializer
    pagination_class = None

    def get_queryset(self):
        return Session.objects.active().filter(user_id=self.request.user.pk).order_by(
            "-last_activity_at", "-created_at")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(),
                "current_session_id": self.claims(self.request).session_id}

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The list, with the session cap and its policy in headers (the body stays a
        plain list, as clients expect)."""
        response = super().list(request, *args, **kwargs)
        for header, value in cap_headers().items():
            response[header] = value
        return response


class SessionDetailView(JWTSessionsView):
    """DELETE -> 204; one of the user's own sessions is revoked (404 for anything else)."""

    def delete(self, request: Request, session_id: str) -> Response:
        try:
            pk = uuid.UUID(session_id)
        except ValueError:
            raise NotFound() from None
        sessions = Session.objects.active().filter(pk=pk, user_id=request.user.pk)
        if not services.revoke_sessions(sessions, RevokeReason.USER):
            raise NotFound()
        response = Response(status=status.HTTP_204_NO_CONTENT)
        if pk == self.claims(request).session_id:
            clear_refresh_cookie(request, response)
        return response


class JWKSView(JWTSessionsView):
    """GET -> the public verifying keys (`{"keys": []}` for HMAC algorithms)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(jwks())


class ReauthenticateView(TokenView):
    """POST {password} with a Bearer token -> a new pair for the same session, with a
    fresh `auth_time` (for actions behind `recent_authentication`); the old pair dies.

    The password goes through `django.contrib.auth.authenticate`, as a login's does (so
    lockout apps and `user_login_failed` see it), and failures count in the login's
    per-username throttle.
    """

    authentication_classes = [JWTSessionAuthentication]
    permission_classes = [IsAuthenticated]
    serializer_class = ReauthenticateSerializer
    throttle_classes = [LoginRateThrottle, ReauthenticateUserRateThrottle]

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user
        credentials = {get_user_model().USERNAME_FIELD: user.get_username(),
                       "password": serializer.validated_data["password"]}
        checked = authenticate(request._request, **credentials)
        if checked is None or checked.pk != user.pk or not may_act(checked):
            logger.info("Reauthentication of session %s failed",
                        self.claims(request).session_id)
            raise InvalidCredentials()
        give_back_slots(request)  # only failed attempts count per username
        return self.token_response(refresh.reauthenticate(self.claims(request), checked,
                                                           request=request))


class TokenEndpointView(JWTSessionsView):
    """Base of introspection and revocation: a `token` form field, as the RFCs have it
    (JSON accepted too)."""

    parser_classes = [FormParser, JSONParser]
    serializer_class = TokenSerializer

    def token(self, request: Request) -> str:
        if self.get_serializer_class() is TokenSerializer:  # a subclass's may add rules
            token = TokenSerializer.plainly_valid_token(request.data)
            if token is not None:
                return token
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["token"]


class IntrospectView(TokenEndpointView):
    """POST token -> `{"active": true, "sub", "sid", "jti", "exp", "iat", "token_type"...}`
    for a live token, else `{"active": false}` (RFC 7662).

    The caller authenticates with a Bearer token or with any of the site's DRF
    authentication classes (e.g. BasicAuthentication for a gateway's service account)
    and needs the permission `jwt_sessions.introspect_session`.
    """

    permission_classes = [IsAuthenticated, CanIntrospect]
    throttle_classes = [IntrospectRateThrottle]
    # Checked before HTTP Basic credentials are: a password check, throttled as a login's.
    password_throttle_classes = [BasicAddressRateThrottle, BasicUserRateThrottle]

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        with gateway.caller_and_token_together(request):  # one Redis round trip for both
            return super().dispatch(request, *args, **kwargs)

    def get_authenticators(self) -> list[BaseAuthentication]:
        # Imported classes at run time (the stubs type the setting as its strings).
        defaults = cast(list[type[BaseAuthentication]],
                        api_settings.DEFAULT_AUTHENTICATION_CLASSES)
        classes: list[type[BaseAuthentication]] = [JWTSessionAuthentication]
        classes += [cls for cls in defaults if cls not in classes]
        return [cls() for cls in classes]

    def perform_authentication(self, request: Request) -> None:
        """Basic credentials are a password check: throttled as a login's (only failures
        count), and right only for an account that may introspect. Anyone else's right
        password is refused as a wrong one, so this door tells no guesser which
        password of a person's account is right."""
        if not presents_basic_credentials(request):
            super().perform_authentication(request)
            return
        if has_control_characters(basic_username(request) or ""):
            raise _wrong_basic_credentials()  # no user is named so: no database lookup
        throttles = [throttle() for throttle in self.password_throttle_classes]
        waits = [throttle.wait() for throttle in throttles
                 if not throttle.allow_request(request, self)]
        if waits:
            self.throttled(request, max((w for w in waits if w is not None), default=None))
        super().perform_authentication(request)
        if request.user.is_authenticated:
            if not CanIntrospect().has_permission(request, self):
                raise _wrong_basic_credentials()
            give_back_slots(request)

    def post(self, request: Request) -> Response:
        return Response(introspection.introspect(self.token(request)))


def _wrong_basic_credentials() -> AuthenticationFailed:
    """The answer DRF's BasicAuthentication gives a wrong password, word for word."""
    return AuthenticationFailed(_("Invalid username/password."))


class RevokeView(TokenEndpointView):
    """POST token -> 200, empty: its session is revoked if the token is live (RFC 7009).

    Holding the token is the authority, as for a refresh: no other credentials. The
    answer is the same whether or not the token was known, so it tells nobody anything.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [RefreshRateThrottle]

    def post(self, request: Request) -> Response:
        introspection.revoke_token(self.token(request))
        return Response(status=status.HTTP_200_OK)
