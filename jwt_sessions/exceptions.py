"""API errors: every failure body is `{"detail": ..., "code": ...}`.

The detail is given to DRF as a dict so that DRF's stock exception handler renders the
code too: no custom EXCEPTION_HANDLER is needed for our errors. For DRF's own errors on
the user's views (no credentials, permission denied, 404, 405...), the optional
`exception_handler` below adds the code as well.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status

if TYPE_CHECKING:
    from rest_framework.response import Response


class _CodedMixin:
    def __init__(self, detail=None, code=None, **kwargs):
        code = code or self.default_code
        super().__init__({"detail": detail or self.default_detail, "code": code}, code,
                         **kwargs)


class AuthenticationError(_CodedMixin, exceptions.AuthenticationFailed):
    """Base of every 401 we raise; DRF adds `WWW-Authenticate` to these."""


class InvalidCredentials(AuthenticationError):
    default_detail = _("No active account found with the given credentials.")
    default_code = "invalid_credentials"


class NotAuthenticated(_CodedMixin, exceptions.NotAuthenticated):
    pass


class TokenInvalid(AuthenticationError):
    default_detail = _("The access token is invalid.")
    default_code = "token_invalid"


class TokenExpired(AuthenticationError):
    default_detail = _("The access token has expired.")
    default_code = "token_expired"


class SessionRevoked(AuthenticationError):
    default_detail = _("This session has been revoked or has ended.")
    default_code = "session_revoked"


class RefreshTokenInvalid(AuthenticationError):
    default_detail = _("The refresh token is invalid or has expired.")
    default_code = "refresh_token_invalid"


class RefreshTokenMissing(AuthenticationError):
    """No refresh token at all (cookie mode, no cookie): a visitor who never signed in, or
    whose cookie is gone; unlike a bad token, nothing ended, so a client need not sign out."""

    default_detail = _("No refresh token was presented.")
    default_code = "refresh_token_missing"


class RefreshTokenReused(AuthenticationError):
    default_detail = _("This refresh token was already used; the session has been revoked.")
    default_code = "refresh_token_reused"


class CsrfFailed(_CodedMixin, exceptions.PermissionDenied):
    default_detail = _("CSRF check failed.")
    default_code = "csrf_failed"


class NotFound(_CodedMixin, exceptions.NotFound):
    default_detail = _("Not found.")
    default_code = "not_found"


class Throttled(exceptions.Throttled):
    """429 with `Retry-After` (DRF sets it from `wait`) and code `throttled`."""

    default_code = "throttled"

    def __init__(self, wait: float | None = None) -> None:
        super().__init__(wait)
        self.detail = {"detail": self.detail,
                       "code": exceptions.ErrorDetail(self.default_code, self.default_code)}


class ServiceUnavailable(_CodedMixin, exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The session store is unavailable; try again shortly.")
    default_code = "service_unavailable"


class ClaimsHookFailed(_CodedMixin, exceptions.APIException, ImproperlyConfigured):
    """500: the project's CLAIMS_HOOK raised or returned what no token may carry. A server
    fault, not the client's: the log says why, the body only that no session was opened
    or changed (an ImproperlyConfigured too, for callers of the Python API)."""

    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_detail = _("The server could not sign your token; try again later.")
    default_code = "claims_hook_failed"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler, with a `code` next to every `detail`.

    For `REST_FRAMEWORK["EXCEPTION_HANDLER"]`: DRF's stock `{"detail": ...}` bodies
    (`not_authenticated`, `permission_denied`, `not_found`, `method_not_allowed`,
    `parse_error`, `throttled`...) gain `"code"`, the code DRF already gives the error,
    and a DPoP refusal its `DPoP-Nonce` header when server nonces are on.
    Validation errors (400) keep DRF's field-error format untouched: a top-level key
    there could collide with a field of the same name, and clients tell field errors
    apart by the status alone.
    """
    # Imported here: rest_framework.views loads the authentication classes, which import us.
    from rest_framework.views import exception_handler as drf_exception_handler

    from .dpop.doors import add_nonce
    from .dpop.errors import DPoPError

    response = drf_exception_handler(exc, context)
    if response is None or isinstance(exc, exceptions.ValidationError):
        return response
    if isinstance(exc, DPoPError):
        add_nonce(response, exc)
    data = response.data
    if isinstance(data, dict) and "code" not in data and "detail" in data:
        response.data = {**data, "code": getattr(data["detail"], "code", "error")}
    return response


class PermissionDenied(_CodedMixin, exceptions.PermissionDenied):
    default_detail = _("You do not have permission to perform this action.")
    default_code = "permission_denied"


class ReauthenticationRequired(_CodedMixin, exceptions.APIException):
    """401: the session proved who its user is too long ago for this action (RFC 9470).

    Not an AuthenticationFailed, so that DRF keeps this `WWW-Authenticate` value (the
    step-up challenge with its `max_age`) instead of the view's plain Bearer challenge.
    """

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = _("Please confirm your password to continue.")
    default_code = "reauthentication_required"

    def __init__(self, max_age: int) -> None:
        super().__init__()
        self.auth_header = (f'Bearer error="insufficient_user_authentication", '
                            f'max_age="{max_age}"')


class MethodRequired(_CodedMixin, exceptions.APIException):
    """401: the session last proved who its user is with none of the methods this action
    demands (`permissions.authenticated_with`): a step-up with one of them is needed.
    Same code as an old `auth_time`, so a client has one step-up path; the challenge
    names the methods."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = _("Please confirm it is you with another method to continue.")
    default_code = "reauthentication_required"

    def __init__(self, methods: list[str]) -> None:
        super().__init__()
        self.auth_header = ('Bearer error="insufficient_user_authentication", '
                            f'error_description="authenticate with {" or ".join(methods)}"')
