"""The Session model: what a row holds (never a usable secret), its queryset and labels."""
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from jwt_sessions.models import Session
from jwt_sessions.tokens import sha256_hex
from tests.conftest import UA_IPHONE

pytestmark = pytest.mark.django_db


def make_session(user, **fields) -> Session:
    now = timezone.now()
    values = {"refresh_token_bcrypt": "x", "refresh_token_sha256": sha256_hex(str(uuid.uuid4())),
              "access_jti": "j", "expires_at": now + timedelta(days=1), **fields}
    return Session.objects.create(user=user, **values)


def test_no_plaintext_refresh_token_in_any_column(api, user, redis_conn):
    first = api.login_ok(user.username, ua=UA_IPHONE)
    second = api.refresh_ok(first["refresh"])
    redis_conn.flushdb()
    third = api.refresh_ok(second["refresh"])
    row = Session.objects.get()
    values = {field.attname: str(getattr(row, field.attname)) for field in Session._meta.fields}
    for token in (first["refresh"], second["refresh"], third["refresh"]):
        for column, value in values.items():
            assert token not in value and token[:43] not in value, column
    assert row.refresh_token_sha256 == sha256_hex(third["refresh"])
    assert row.previous_refresh_token_sha256 == sha256_hex(second["refresh"])
    assert row.refresh_token_bcrypt.startswith("$2b$")


def test_row_records_client_and_times(api, user):
    data = api.login_ok(user.username, ua=UA_IPHONE, ip="192.0.2.3")
    row = Session.objects.get(pk=data["session_id"])
    assert (row.user_agent, row.device_type, row.ip_address) == (UA_IPHONE, "mobile",
                                                                 "192.0.2.3")
    assert row.location is None and row.revoked_at is None and row.revoked_reason == ""
    assert row.created_at == row.last_activity_at
    assert row.expires_at - row.created_at == timedelta(days=30)


def test_queryset_active_expired_revoked(user, make_user):
    now = timezone.now()
    live = make_session(user)
    expired = make_session(user, expires_at=now - timedelta(seconds=1))
    revoked = make_session(user, revoked_at=now, revoked_reason="logout")
    theirs = make_session(make_user())
    assert set(Session.objects.active()) == {live, theirs}
    assert set(Session.objects.active().for_user(user)) == {live}
    assert set(Session.objects.expired()) == {expired}
    assert set(Session.objects.revoked()) == {revoked}
    assert [s.status for s in (live, expired, revoked)] == ["active", "expired", "revoked"]
    assert (live.is_active, expired.is_active, revoked.is_active) == (True, False, False)


def test_refresh_token_sha256_is_unique(user):
    from django.db import IntegrityError, transaction

    make_session(user, refresh_token_sha256="a" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_session(user, refresh_token_sha256="a" * 64)


@pytest.mark.parametrize(("fields", "label"), [
    ({"browser": "Chrome 131", "os": "macOS", "device": "Mac"}, "Chrome 131 on macOS (Mac)"),
    ({"browser": "Mobile Safari 17", "os": "iOS", "device": "iPhone"},
     "Mobile Safari 17 on iOS (iPhone)"),
    ({"browser": "Firefox 130", "os": "Linux", "device": "Other"}, "Firefox 130 on Linux"),
    ({}, "Unknown browser"),
])
def test_device_label_reads_like_a_person_would_say_it(user, fields, label):
    session = make_session(user, **fields)
    assert session.device_label == label
    assert str(session) == f"{label} — {user.get_username()}"


def test_deleting_a_user_deletes_their_sessions(api, user):
    data = api.login_ok(user.username)
    user.delete()
    assert not Session.objects.exists()
    resp = api.whoami(data["access"])
    assert resp.status_code == 401
