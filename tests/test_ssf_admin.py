"""The Shared Signals admin: streams and the outbox are visible, read-only, and the
receiver's authorization header is never shown."""
from __future__ import annotations

import pytest

from jwt_sessions import api as jwt_api
from jwt_sessions.shared_signals.models import DeliveryMethod, SsfOutboxEvent, SsfStream
from tests.ssf_helpers import SESSION_REVOKED

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ssf_on")]


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@x.test", "pw"))
    return client


def test_streams_and_events_are_listed_without_the_secret(admin_client, stream_manager, api,
                                                          user):
    stream = SsfStream.objects.create(
        owner=stream_manager, audience="https://rp.example.test/",
        delivery_method=DeliveryMethod.PUSH, endpoint_url="https://rp.example.test/events",
        authorization_header="Bearer very-secret", events_requested=[SESSION_REVOKED])
    jwt_api.revoke_session(api.login_ok(user.username)["session_id"])
    listing = admin_client.get("/admin/jwt_sessions/ssfstream/")
    assert listing.status_code == 200 and b"https://rp.example.test/" in listing.content
    page = admin_client.get(f"/admin/jwt_sessions/ssfstream/{stream.pk}/change/")
    assert page.status_code == 200 and b"very-secret" not in page.content
    event = SsfOutboxEvent.objects.get()
    pending = admin_client.get("/admin/jwt_sessions/ssfoutboxevent/?outcome=pending")
    assert event.jti.encode() in pending.content
    delivered = admin_client.get("/admin/jwt_sessions/ssfoutboxevent/?outcome=delivered")
    assert event.jti.encode() not in delivered.content
    assert admin_client.get("/admin/jwt_sessions/ssfstream/add/").status_code == 403
