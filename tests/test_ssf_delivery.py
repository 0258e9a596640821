"""Push delivery from the outbox: after commit, with the receiver's Authorization header,
retried with back-off, given up on a refusal, drained by the command; never two pushes
of one row at once."""
from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from jwt_sessions import api as jwt_api
from jwt_sessions.shared_signals import pusher as pusher_module
from jwt_sessions.shared_signals.models import DeliveryMethod, SsfOutboxEvent, SsfStream
from jwt_sessions.shared_signals.pusher import deliver, deliver_due, pusher
from tests.ssf_helpers import (
    SESSION_REVOKED,
)

pytestmark = pytest.mark.usefixtures("ssf_on")


@pytest.fixture
def push_stream(stream_manager, push_receiver):
    return SsfStream.objects.create(
        owner=stream_manager, audience="https://rp.example.test/",
        delivery_method=DeliveryMethod.PUSH, endpoint_url=push_receiver.url,
        authorization_header="Bearer s3cret", events_requested=[SESSION_REVOKED])


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_push_follows_the_commit_with_the_receivers_header(push_stream, push_receiver, api,
                                                           user):
    tokens = api.login_ok(user.username)
    jwt_api.revoke_session(tokens["session_id"])
    _wait_for(lambda: SsfOutboxEvent.objects.filter(delivered_at__isnull=False).exists())
    [pushed] = push_receiver.received
    assert pushed["headers"]["Authorization"] == "Bearer s3cret"
    assert pushed["headers"]["Content-Type"] == "application/secevent+jwt"
    assert pushed["headers"]["Accept"] == "application/json"
    assert pushed["body"] == SsfOutboxEvent.objects.get().token


@pytest.mark.django_db(transaction=True)
def test_a_receiver_down_then_back_gets_the_event(push_stream, push_receiver, api, user):
    push_receiver.status = 503
    jwt_api.revoke_session(api.login_ok(user.username)["session_id"])
    _wait_for(lambda: len(push_receiver.received) >= 3)  # retried with back-off
    push_receiver.status = 202
    _wait_for(lambda: SsfOutboxEvent.objects.filter(delivered_at__isnull=False).exists())
    row = SsfOutboxEvent.objects.get()
    assert row.attempts == len(push_receiver.received) >= 4
    assert len({pushed["body"] for pushed in push_receiver.received}) == 1  # one jti, one SET


@pytest.mark.django_db
def test_a_refusal_is_final(push_stream, push_receiver, api, user):
    push_receiver.refuse("invalid_audience")
    jwt_api.revoke_session(api.login_ok(user.username)["session_id"])
    row = SsfOutboxEvent.objects.get()
    assert deliver(row.jti) is None
    row.refresh_from_db()
    assert row.failed_at is not None and "invalid_audience" in row.last_error
    assert deliver_due() == 0


@pytest.mark.django_db
def test_back_off_doubles_up_to_its_bound(settings, push_stream, push_receiver, api, user):
    settings.JWT_SESSIONS["SHARED_SIGNALS"].update(RETRY_INTERVAL=1, RETRY_MAX_INTERVAL=3)
    push_receiver.status = 500
    jwt_api.revoke_session(api.login_ok(user.username)["session_id"])
    row = SsfOutboxEvent.objects.get()
    waits = []
    for _ in range(4):
        SsfOutboxEvent.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        waits.append(deliver(row.jti).total_seconds())
    assert waits == [1, 2, 3, 3]


@pytest.mark.django_db
def test_a_claimed_row_is_not_pushed_twice(push_stream, push_receiver, api, user):
    """The first attempt's claim moves the row past the push timeout: a second process
    (or the command) finds nothing due meanwhile."""
    jwt_api.revoke_session(api.login_ok(user.username)["session_id"])
    row = SsfOutboxEvent.objects.get()
    claimed_at = timezone.now()
    pusher_module._due(claimed_at).filter(pk=row.pk).update(
        next_attempt_at=claimed_at + timezone.timedelta(seconds=30))  # another process's claim
    assert deliver(row.jti) is None and deliver_due() == 0
    assert push_receiver.received == []


@pytest.mark.django_db
def test_the_command_drains_what_a_dead_process_left(push_stream, push_receiver, api, user,
                                                     capsys):
    for _ in range(3):  # committed rows whose process died before pushing (no on_commit here)
        jwt_api.revoke_session(api.login_ok(user.username)["session_id"])
    assert pusher.pending() == 0
    call_command("sendsecurityevents")
    assert "3 event(s) attempted, 0 pending" in capsys.readouterr().out
    assert len(push_receiver.received) == 3
    assert SsfOutboxEvent.objects.filter(delivered_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_the_command_prunes_old_rows(settings, push_stream, push_receiver, api, user):
    jwt_api.revoke_session(api.login_ok(user.username)["session_id"])
    deliver_due()
    push_stream.status = "paused"  # one never delivered: expires just the same
    push_stream.save()
    jwt_api.revoke_session(api.login_ok(user.username)["session_id"])
    SsfOutboxEvent.objects.update(created_at=timezone.now() - timezone.timedelta(days=8))
    call_command("sendsecurityevents")
    assert not SsfOutboxEvent.objects.exists()


@pytest.mark.django_db
def test_redirects_are_not_followed(push_stream, push_receiver, api, user):
    """The receiver's Authorization header goes to the stream's URL and nowhere else."""
    push_receiver.status = 307
    jwt_api.revoke_session(api.login_ok(user.username)["session_id"])
    row = SsfOutboxEvent.objects.get()
    assert deliver(row.jti) is not None
    assert len(push_receiver.received) == 1
