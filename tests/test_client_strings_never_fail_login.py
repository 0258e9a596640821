"""What a client sends about itself (User-Agent, address) is stored on the session row:
nothing in it may make a login fail with a 500, on any database (PostgreSQL refuses NUL
characters in text)."""
from __future__ import annotations

import pytest
from django.test import Client

from jwt_sessions.models import Session
from tests.conftest import PASSWORD, next_ip, url

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("agent", ["curl/8.0\x00", "\x00" * 2000, "Mozilla/5.0 \x00(X11)"],
                         ids=["trailing", "only", "inside"])
def test_a_user_agent_with_nul_characters_logs_in(user, agent):
    client = Client(raise_request_exception=False)
    resp = client.post(url("login"), {"username": user.username, "password": PASSWORD},
                       content_type="application/json", HTTP_USER_AGENT=agent,
                       REMOTE_ADDR=next_ip())
    assert resp.status_code == 200, (resp.status_code, resp.content[:200])
    session = Session.objects.get(pk=resp.json()["session_id"])
    assert "\x00" not in session.user_agent


def test_a_scoped_ipv6_address_logs_in_and_is_stored_without_its_zone(user):
    """A server may report a link-local peer with its zone (`fe80::1%eth0`), which
    PostgreSQL's inet refuses; the zone names our interface, not the client."""
    client = Client(raise_request_exception=False)
    resp = client.post(url("login"), {"username": user.username, "password": PASSWORD},
                       content_type="application/json", REMOTE_ADDR="fe80::1%eth0")
    assert resp.status_code == 200, (resp.status_code, resp.content[:200])
    assert Session.objects.get(pk=resp.json()["session_id"]).ip_address == "fe80::1"
