"""Refresh cookie mode (`REFRESH_COOKIE`): the refresh token in an HttpOnly cookie.

The cookie is scoped to the prefix under which `jwt_sessions.urls` is included, so only
login, refresh and logout ever see it; using it is CSRF-checked as Django checks forms.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils import timezone
from rest_framework.authentication import CSRFCheck
from rest_framework.exceptions import ParseError

from .conf import jwt_settings
from .exceptions import CsrfFailed

DEFAULT_NAME = "jwt_sessions_refresh"


def cookie_mode() -> bool:
    return jwt_settings.REFRESH_COOKIE is not None


def cookie_options() -> dict[str, Any]:
    """Name, path, domain, secure and samesite of the refresh cookie, with their defaults."""
    configured = dict(jwt_settings.REFRESH_COOKIE or {})
    login_path = reverse("jwt_sessions:login")
    return {
        "name": configured.get("name", DEFAULT_NAME),
        "path": configured.get("path", login_path[: -len("login/")]),
        "domain": configured.get("domain"),
        "secure": configured.get("secure", not settings.DEBUG),
        "samesite": configured.get("samesite", "Lax"),
    }


def set_refresh_cookie(request: Any, response: Any, pair: Any) -> bool:
    """Put the refresh token in the cookie; False (nothing done) outside cookie mode.

    Also makes sure the client has a CSRF token (Django's `csrftoken` cookie, set by
    CsrfViewMiddleware), since using the refresh cookie requires one.
    """
    if not cookie_mode():
        return False
    get_token(getattr(request, "_request", request))
    options = cookie_options()
    max_age = int((pair.refresh_expires_at - timezone.now()).total_seconds())
    response.set_cookie(options["name"], pair.refresh, max_age=max(max_age, 0),
                        path=options["path"], domain=options["domain"],
                        secure=options["secure"], httponly=True,
                        samesite=options["samesite"])
    return True


def clear_refresh_cookie(request: Any, response: Any) -> None:
    if cookie_mode():
        options = cookie_options()
        response.delete_cookie(options["name"], path=options["path"],
                               domain=options["domain"], samesite=options["samesite"])


def refresh_from_cookie(request: Any) -> str | None:
    """The refresh token from the cookie, after a CSRF check (403 `csrf_failed`)."""
    if not cookie_mode():
        return None
    value = request.COOKIES.get(cookie_options()["name"])
    if not value:
        return None
    django_request = getattr(request, "_request", request)
    _read_form(django_request)
    # DRF's CSRFCheck: Django's middleware, answering the reason instead of a response.
    check = CSRFCheck(_no_view)
    check.process_request(django_request)
    reason = check.process_view(django_request, _no_view, (), {})
    if reason:
        raise CsrfFailed()
    return value


def _read_form(request: HttpRequest) -> None:
    """Read the form the CSRF check looks in for its token: one Django cannot read (no
    boundary, too many fields, too big) is DRF's JSON 400, not Django's error page."""
    try:
        request.POST  # noqa: B018 - parsed here, where its failure can be answered
    except (MultiPartParserError, SuspiciousOperation):
        raise ParseError() from None


def _no_view(request: HttpRequest) -> HttpResponse:
    """The CSRF check runs as middleware would, in front of no view."""
    return HttpResponse()
