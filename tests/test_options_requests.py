"""OPTIONS (DRF's metadata) on every endpoint: anyone may ask, nobody gets a 500."""
from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import bearer, url

pytestmark = pytest.mark.django_db

ENDPOINTS = [("login",), ("refresh",), ("logout",), ("logout-all",), ("session-list",),
             ("session-detail", "00000000-0000-0000-0000-000000000000"), ("jwks",),
             ("introspect",), ("revoke",), ("reauthenticate",)]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "bearer"])
def test_options_describes_the_endpoint_without_a_500(endpoint, authenticated, tokens):
    client = Client(raise_request_exception=False)
    headers = bearer(tokens["access"]) if authenticated else {}
    resp = client.options(url(*endpoint), **headers)
    # Views behind IsAuthenticated (or a permission) answer DRF's 401/403 as for any
    # other method; the others describe themselves.
    assert resp.status_code in (200, 401, 403), (resp.status_code, resp.content[:300])
    body = resp.json()
    assert body["name"] if resp.status_code == 200 else body["code"]
