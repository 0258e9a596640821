"""The optional exception handler: DRF's own errors on a user's views carry a `code`."""
from __future__ import annotations

import pytest
from django.http import Http404
from django.test import Client
from django.urls import include, path
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from tests.conftest import assert_error, bearer

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

HANDLER = "jwt_sessions.exceptions.exception_handler"


@pytest.fixture
def handler(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "EXCEPTION_HANDLER": HANDLER}


class Protected(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"id": request.user.pk})


class Raising(APIView):
    """Raises what the query string names, as a user's view might."""

    permission_classes: list = []
    authentication_classes: list = []

    class Form(serializers.Serializer):
        code = serializers.CharField()  # a field named like the key we add elsewhere

    def get(self, request):
        kind = request.query_params["raise"]
        if kind == "404":
            raise Http404
        if kind == "denied":
            raise PermissionDenied()
        if kind == "list":
            raise ValidationError("a plain message")
        self.Form(data={}).is_valid(raise_exception=True)

    def put(self, request):
        return Response()


urlpatterns = [path("auth/", include("jwt_sessions.urls")),
               path("protected/", Protected.as_view()), path("raising/", Raising.as_view())]


def call(view, method="get", query="", **headers):
    where = "/protected/" if view is Protected else "/raising/"
    return getattr(Client(), method)(where + query, **headers)


def test_no_credentials_on_a_users_view_has_code_not_authenticated(handler):
    assert_error(call(Protected), 401, "not_authenticated")


def test_without_the_handler_drf_stock_body_has_no_code():
    assert "code" not in call(Protected).json()


def test_our_own_errors_keep_their_code(handler):
    resp = call(Protected, **bearer("not-a-jwt"))
    assert_error(resp, 401, "token_invalid")


def test_a_valid_token_still_passes(handler, tokens):
    resp = call(Protected, **bearer(tokens["access"]))
    assert resp.status_code == 200


@pytest.mark.parametrize("kind,status,code", [
    ("404", 404, "not_found"),
    ("denied", 403, "permission_denied"),
])
def test_drf_errors_get_their_drf_code(handler, kind, status, code):
    assert_error(call(Raising, query=f"?raise={kind}"), status, code)


def test_method_not_allowed_gets_a_code(handler):
    assert_error(call(Raising, method="delete"), 405, "method_not_allowed")


def test_validation_errors_keep_drf_field_format(handler):
    resp = call(Raising, query="?raise=form")
    assert resp.status_code == 400
    assert resp.json() == {"code": ["This field is required."]}
    assert call(Raising, query="?raise=list").json() == ["a plain message"]
