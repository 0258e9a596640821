"""OpenAPI for drf-spectacular (optional: `pip install jwt_sessions[openapi]`).

Imported by the app when `drf_spectacular` is installed. It documents the Bearer scheme
of `JWTSessionAuthentication` and every endpoint of `jwt_sessions.urls` (bodies, success
and error responses with their codes) without touching the views: each view is
replaced, for schema generation only, by an annotated subclass.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers

from .serializers import (
    LoginSerializer,
    LogoutAllSerializer,
    ReauthenticateSerializer,
    RefreshSerializer,
    SessionSerializer,
    TokenPairSerializer,
    TokenSerializer,
)

TAG = "auth"


class JWTSessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "jwt_sessions.authentication.JWTSessionAuthentication"
    name = "jwtSessionsBearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token from `login/` or `refresh/`."}


class ErrorSerializer(serializers.Serializer):
    """Every 401/403/404/429/503 body: `{"detail", "code"}`."""

    detail = serializers.CharField()
    code = serializers.CharField()


class JWKSSerializer(serializers.Serializer):
    keys = serializers.ListField(child=serializers.DictField())


class IntrospectionSerializer(serializers.Serializer):
    """RFC 7662's answer: only `active` for a token that is not live."""

    active = serializers.BooleanField()
    sub = serializers.CharField(required=False)
    sid = serializers.UUIDField(required=False)
    jti = serializers.CharField(required=False, help_text="Access tokens only.")
    exp = serializers.IntegerField(required=False)
    iat = serializers.IntegerField(required=False)
    token_type = serializers.ChoiceField(["access", "refresh"], required=False)
    auth_time = serializers.IntegerField(required=False)
    amr = serializers.ListField(child=serializers.CharField(), required=False)


def error(description: str, *codes: str) -> OpenApiResponse:
    listed = ", ".join(f"`{code}`" for code in codes)
    return OpenApiResponse(ErrorSerializer, description=f"{description} Codes: {listed}.")


FIELD_ERRORS = OpenApiResponse(OpenApiTypes.OBJECT,
                               description="A missing or wrongly typed field (DRF format).")
NO_CONTENT = OpenApiResponse(None, description="Done.")
BEARER_401 = error("Missing, invalid or expired access token, or ended session.",
                   "not_authenticated", "token_invalid", "token_expired", "session_revoked")
UNAVAILABLE = error("The session store is unavailable (policy `deny`).",
                    "service_unavailable")
THROTTLED = error("Too many attempts; see `Retry-After`.", "throttled")
# RFC 7662 / 7009 bodies are forms; JSON is accepted too.
TOKEN_FORM = {"application/x-www-form-urlencoded": TokenSerializer,
              "application/json": TokenSerializer}

SCHEMAS: dict[str, dict[str, Any]] = {
    "LoginView": {"post": extend_schema(
        operation_id="jwt_sessions_login", tags=[TAG], request=LoginSerializer,
        summary="Log in: open a session on this device",
        responses={200: TokenPairSerializer, 400: FIELD_ERRORS,
                   401: error("Wrong credentials or inactive user.", "invalid_credentials"),
                   429: THROTTLED, 503: UNAVAILABLE})},
    "RefreshView": {"post": extend_schema(
        operation_id="jwt_sessions_refresh", tags=[TAG], request=RefreshSerializer,
        summary="Exchange a refresh token (body or cookie) for a new pair",
        responses={200: TokenPairSerializer, 400: FIELD_ERRORS,
                   401: error("The refresh token cannot be used; on reuse the session is "
                              "revoked.", "refresh_token_invalid", "refresh_token_reused",
                              "session_revoked", "refresh_token_missing"),
                   403: error("Cookie mode: CSRF check failed.", "csrf_failed"),
                   429: THROTTLED, 503: UNAVAILABLE})},
    "LogoutView": {"post": extend_schema(
        operation_id="jwt_sessions_logout", tags=[TAG], request=None,
        summary="Log out: revoke the calling session",
        responses={204: NO_CONTENT, 401: BEARER_401, 503: UNAVAILABLE})},
    "LogoutAllView": {"post": extend_schema(
        operation_id="jwt_sessions_logout_all", tags=[TAG], request=LogoutAllSerializer,
        summary="Revoke every session of the user (optionally keeping this one)",
        responses={204: NO_CONTENT, 400: FIELD_ERRORS, 401: BEARER_401, 503: UNAVAILABLE})},
    "SessionListView": {"get": extend_schema(
        operation_id="jwt_sessions_session_list", tags=[TAG],
        summary="The user's active sessions (devices)",
        responses={200: SessionSerializer(many=True), 401: BEARER_401, 503: UNAVAILABLE})},
    "SessionDetailView": {"delete": extend_schema(
        operation_id="jwt_sessions_session_revoke", tags=[TAG],
        summary="Revoke one of the user's sessions",
        responses={204: NO_CONTENT, 401: BEARER_401,
                   404: error("Unknown, ended, or another user's session.", "not_found"),
                   503: UNAVAILABLE})},
    "IntrospectView": {"post": extend_schema(
        operation_id="jwt_sessions_introspect", tags=[TAG], request=TOKEN_FORM,
        summary="Is this access or refresh token live? (RFC 7662)",
        description="The caller needs the permission `jwt_sessions.introspect_session`.",
        responses={200: IntrospectionSerializer, 400: FIELD_ERRORS,
                   401: BEARER_401,
                   403: error("The caller lacks `jwt_sessions.introspect_session`.",
                              "permission_denied"),
                   429: THROTTLED, 503: UNAVAILABLE})},
    "RevokeView": {"post": extend_schema(
        operation_id="jwt_sessions_revoke", tags=[TAG], request=TOKEN_FORM,
        summary="Revoke the session of an access or refresh token (RFC 7009)",
        responses={200: OpenApiResponse(None, description="Done, or the token was not "
                                        "live: the answer is the same."),
                   400: FIELD_ERRORS, 429: THROTTLED, 503: UNAVAILABLE})},
    "ReauthenticateView": {"post": extend_schema(
        operation_id="jwt_sessions_reauthenticate", tags=[TAG],
        request=ReauthenticateSerializer,
        summary="Confirm the password: a new pair for this session, fresh `auth_time`",
        responses={200: TokenPairSerializer, 400: FIELD_ERRORS,
                   401: error("Wrong password, or the access token cannot be used.",
                              "invalid_credentials", "not_authenticated", "token_invalid",
                              "token_expired", "session_revoked"),
                   429: THROTTLED, 503: UNAVAILABLE})},
    "JWKSView": {"get": extend_schema(
        operation_id="jwt_sessions_jwks", tags=[TAG], summary="Public verifying keys (JWKS)",
        responses={200: JWKSSerializer})},
}


def _view_extension(view_name: str, methods: dict[str, Any]) -> type[OpenApiViewExtension]:
    """An extension that swaps `jwt_sessions.views.<view_name>` for an annotated subclass."""

    def view_replacement(self: OpenApiViewExtension) -> type:
        subclass = type(self.target.__name__, (self.target,), {"__module__": __name__})
        return extend_schema_view(**methods)(subclass)

    return type(f"{view_name}Schema", (OpenApiViewExtension,), {
        "target_class": f"jwt_sessions.views.{view_name}",
        "view_replacement": view_replacement,
    })


VIEW_EXTENSIONS = [_view_extension(name, methods) for name, methods in SCHEMAS.items()]
