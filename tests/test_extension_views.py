"""The views are extended by subclassing: a swapped serializer is used, and the login
throttle gives its slot back whatever the view's `post` or `throttle_classes` became."""
from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.urls import include, path
from rest_framework import serializers
from rest_framework.response import Response

from example_project.views import WhoAmIView
from jwt_sessions import api as jwt_api
from jwt_sessions.exceptions import InvalidCredentials
from jwt_sessions.serializers import (
    LoginSerializer,
    LogoutAllSerializer,
    RefreshSerializer,
    TokenSerializer,
)
from jwt_sessions.throttling import LoginRateThrottle, LoginUserRateThrottle
from jwt_sessions.views import IntrospectView, LoginView, LogoutAllView, RefreshView
from tests.conftest import PASSWORD, assert_error, bearer, next_ip
from tests.token_endpoints import grant_introspection

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.urls("tests.test_extension_views")]


# ------------------------------------------------------------------ serializers
class LoginWithCodeSerializer(LoginSerializer):
    """A second factor, checked against what the view put in the context."""

    code = serializers.CharField()

    def validate_code(self, value: str) -> str:
        if value != self.context["request"].headers.get("X-Expected-Code"):
            raise serializers.ValidationError("wrong code")
        return value

    def validate(self, attrs: dict) -> dict:
        attrs.pop("code")
        return attrs


class RefreshWithClientSerializer(RefreshSerializer):
    client_id = serializers.ChoiceField(choices=["web"])


class KeepCurrentByDefaultSerializer(LogoutAllSerializer):
    keep_current = serializers.BooleanField(required=False, default=True)


class CodeLoginView(LoginView):
    serializer_class = LoginWithCodeSerializer


class ClientRefreshView(RefreshView):
    def get_serializer_class(self):
        return RefreshWithClientSerializer


class KeepCurrentLogoutAllView(LogoutAllView):
    serializer_class = KeepCurrentByDefaultSerializer


class AccessHintOnlySerializer(TokenSerializer):
    token_type_hint = serializers.ChoiceField(choices=["access_token"])


class AccessHintIntrospectView(IntrospectView):
    serializer_class = AccessHintOnlySerializer


# ------------------------------------------------------------------ throttles
class StrictUserThrottle(LoginUserRateThrottle):
    scope = "strict_login_user"

    def get_rate(self) -> str:
        return "2/min"


class StrictLoginView(LoginView):
    throttle_classes = [LoginRateThrottle, StrictUserThrottle]


class AuditedLoginView(LoginView):
    """Its own `post`: the base view's code never runs."""

    audit: list = []

    def post(self, request):
        user = authenticate(request._request, username=request.data.get("username"),
                            password=request.data.get("password"))
        if user is None:
            raise InvalidCredentials()
        self.audit.append(user.pk)
        return Response(jwt_api.issue_tokens(user, request))


urlpatterns = [
    path("auth/", include("jwt_sessions.urls")),
    path("api/whoami/", WhoAmIView.as_view()),
    path("custom/code-login/", CodeLoginView.as_view()),
    path("custom/client-refresh/", ClientRefreshView.as_view()),
    path("custom/logout-all/", KeepCurrentLogoutAllView.as_view()),
    path("custom/introspect/", AccessHintIntrospectView.as_view()),
    path("custom/strict-login/", StrictLoginView.as_view()),
    path("custom/audited-login/", AuditedLoginView.as_view()),
]


def login_at(api, route: str, username: str, password: str, **body):
    return api.post(route, {"username": username, "password": password, **body},
                    REMOTE_ADDR=next_ip())


# ------------------------------------------------------------------ tests
def test_a_subclassed_login_view_uses_its_serializer_with_the_request_in_context(api, user):
    wrong = api.post("/custom/code-login/", {"username": user.username, "password": PASSWORD,
                                             "code": "111"},
                     REMOTE_ADDR=next_ip(), HTTP_X_EXPECTED_CODE="222")
    assert wrong.status_code == 400 and "code" in wrong.json()
    right = api.post("/custom/code-login/", {"username": user.username, "password": PASSWORD,
                                             "code": "222"},
                     REMOTE_ADDR=next_ip(), HTTP_X_EXPECTED_CODE="222")
    assert right.status_code == 200, right.content


def test_a_subclassed_refresh_view_uses_its_serializer_class(api, tokens):
    missing = api.post("/custom/client-refresh/", {"refresh": tokens["refresh"]})
    assert missing.status_code == 400 and "client_id" in missing.json()
    ok = api.post("/custom/client-refresh/", {"refresh": tokens["refresh"],
                                              "client_id": "web"})
    assert ok.status_code == 200, ok.content


def test_a_subclassed_introspect_view_uses_its_serializer(api, tokens, make_user):
    """A body the default serializer accepts at a glance is still the subclass's to judge."""
    gateway = make_user()
    grant_introspection(gateway)
    caller = bearer(api.login_ok(gateway.username)["access"])
    form = "application/x-www-form-urlencoded"
    missing = api.client.post("/custom/introspect/", f"token={tokens['access']}",
                              content_type=form, **caller)
    assert missing.status_code == 400 and "token_type_hint" in missing.json()
    ok = api.client.post("/custom/introspect/",
                         f"token={tokens['access']}&token_type_hint=access_token",
                         content_type=form, **caller)
    assert ok.json()["active"] is True


def test_a_subclassed_logout_all_view_uses_its_serializer(api, user):
    first = api.login_ok(user.username)
    second = api.login_ok(user.username)
    resp = api.post("/custom/logout-all/", **bearer(second["access"]))
    assert resp.status_code == 204
    assert api.whoami(second["access"]).status_code == 200  # kept: the swapped default
    assert_error(api.whoami(first["access"]), 401, "session_revoked")


def test_a_subclassed_throttle_still_gives_back_successful_logins(api, user, clock):
    for _ in range(5):
        assert login_at(api, "/custom/strict-login/", user.username, PASSWORD).status_code == 200
    for _ in range(2):
        assert login_at(api, "/custom/strict-login/", user.username, "wrong").status_code == 401
    assert_error(login_at(api, "/custom/strict-login/", user.username, PASSWORD), 429,
                 "throttled")


def test_a_view_with_its_own_post_still_gives_back_successful_logins(api, user):
    for _ in range(12):
        assert login_at(api, "/custom/audited-login/", user.username,
                        PASSWORD).status_code == 200
    for _ in range(9):
        assert login_at(api, "/custom/audited-login/", user.username,
                        "wrong").status_code == 401
    assert login_at(api, "/custom/audited-login/", user.username, PASSWORD).status_code == 200
    assert AuditedLoginView.audit.count(user.pk) == 13


def test_a_request_refused_by_the_address_throttle_takes_no_username_slot(api, user, clock):
    """Otherwise a stranger on a throttled address keeps the victim locked out."""
    ip = next_ip()
    for n in range(20):
        api.login(f"nobody{n}", password="wrong", ip=ip)
    for _ in range(15):
        assert_error(api.login(user.username, password="wrong", ip=ip), 429, "throttled")
    assert api.login(user.username, password=PASSWORD).status_code == 200
