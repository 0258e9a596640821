"""The root discovery documents: a gateway or receiver that knows only the issuer finds
the metadata at the path RFC 8414 and SSF derive from it, naming that same issuer."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import include, path

from jwt_sessions.discovery import discovery_urlpatterns
from tests.conftest import url

pytestmark = pytest.mark.django_db
ISSUER = "https://auth.example.test/"
TENANT_ISSUER = "https://auth.example.test/tenant-1"

# A project's root urls.py, as docs/other-services.md writes it.
urlpatterns = [path("auth/", include("jwt_sessions.urls")), *discovery_urlpatterns(ISSUER),
               *discovery_urlpatterns(TENANT_ISSUER)]


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("where, issuer", [
    ("/.well-known/oauth-authorization-server", ISSUER),
    ("/.well-known/oauth-authorization-server/tenant-1", TENANT_ISSUER),
])
def test_the_metadata_is_at_the_path_its_issuer_gives(where, issuer):
    """RFC 8414: the issuer returned must be the one the client derived the path from."""
    body = Client().get(where).json()
    assert body["issuer"] == issuer
    assert body["introspection_endpoint"] == f"http://testserver{url('introspect')}"


@pytest.mark.urls(__name__)
def test_no_other_path_answers():
    assert Client().get("/.well-known/oauth-authorization-server/tenant-2").status_code == 404
    assert Client().get("/.well-known/ssf-configuration").status_code == 404  # Shared Signals off


def test_the_issuer_comes_from_the_settings(settings):
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "ISSUER": "https://id.example.test/eu"}
    [metadata] = discovery_urlpatterns()
    assert str(metadata.pattern) == ".well-known/oauth-authorization-server/eu"


def test_without_an_issuer_there_is_nothing_to_derive(settings):
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "ISSUER": None}
    assert discovery_urlpatterns() == []


def test_with_shared_signals_on_both_documents_are_offered(ssf_on):
    from tests.ssf_helpers import ISSUER as SSF_ISSUER

    assert SSF_ISSUER == ISSUER
    assert [str(p.pattern) for p in discovery_urlpatterns()] == [
        ".well-known/oauth-authorization-server", ".well-known/ssf-configuration"]
