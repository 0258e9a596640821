"""`clearjwtsessions`: bounded table, no Redis orphans, missed revocations replayed."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone
from freezegun import freeze_time

from jwt_sessions import cleanup, services
from jwt_sessions.lifetimes import revocation_window
from jwt_sessions.models import Session
from jwt_sessions.redis import mirror, recovery
from jwt_sessions.redis.mirror import StoreUnavailable, circuit
from jwt_sessions.redis.store import store
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)

START = "2030-01-01 12:00:00"


def run(*args: str) -> str:
    out = StringIO()
    call_command("clearjwtsessions", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def aged(make_user, jwt_settings):
    """Sessions of every age, seen from 2030-02-05 (retention: the default 30 days)."""
    jwt_settings(REFRESH_TOKEN_LIFETIME=timedelta(days=2))
    user = make_user()
    with freeze_time(START):
        old_revoked = services.issue_tokens(user).session_id
        services.revoke_session(old_revoked)
        old_expired = services.issue_tokens(user).session_id  # ended 2030-01-03
    with freeze_time("2030-01-20"):
        recent_revoked = services.issue_tokens(user).session_id
        services.revoke_session(recent_revoked)
    with freeze_time("2030-02-05"):
        active = services.issue_tokens(user).session_id
    return {"stale": {old_revoked, old_expired}, "kept": {recent_revoked, active},
            "active": active}


def remaining() -> set:
    return set(Session.objects.values_list("pk", flat=True))


def test_deletes_only_sessions_ended_before_retention(aged):
    with freeze_time("2030-02-05"):
        out = run()
    assert "Deleted 2 session(s)." in out
    assert remaining() == aged["kept"]


def test_audit_retention_setting_is_honoured(aged, jwt_settings):
    jwt_settings(AUDIT_RETENTION=timedelta(days=10))
    with freeze_time("2030-02-05"):
        run()
    assert remaining() == {aged["active"]}


def test_dry_run_counts_and_changes_nothing(aged):
    before = remaining()
    with freeze_time("2030-02-05"):
        out = run("--dry-run")
    assert "Would delete 2 session(s)." in out
    assert "Would prune" in out and "Would replay" in out
    assert remaining() == before


def test_small_batches_delete_everything_and_rerun_is_a_no_op(aged):
    with freeze_time("2030-02-05"):
        assert "Deleted 2 session(s)." in run("--batch-size", "1")
        second = run("--batch-size", "1")
    assert "Deleted 0 session(s)." in second
    assert "Pruned 0 orphaned" in second
    assert remaining() == aged["kept"]


def test_batch_size_must_be_positive():
    with pytest.raises(CommandError):
        run("--batch-size", "0")


def test_batch_size_is_bounded():
    """A LIMIT every database holds: one beyond it is a command error, not a traceback."""
    assert "Deleted 0 session(s)." in run("--batch-size", str(cleanup.MAX_BATCH_SIZE))
    with pytest.raises(CommandError, match="from 1 to"):
        run("--batch-size", str(cleanup.MAX_BATCH_SIZE + 1))


def test_no_retention_still_keeps_the_rows_the_replay_needs(make_user, jwt_settings):
    """AUDIT_RETENTION 0: what ended within the revocation window stays (a revocation Redis
    missed is replayed from its row); what ended before goes. The dry run counts alike."""
    jwt_settings(AUDIT_RETENTION=0)
    user = make_user()
    window, now = revocation_window(), timezone.now()
    inside, outside = now - window + timedelta(seconds=2), now - window - timedelta(seconds=2)
    rows = {}
    for name, field, when in (("revoked now", "revoked_at", now),
                              ("revoked inside", "revoked_at", inside),
                              ("revoked outside", "revoked_at", outside),
                              ("expired inside", "expires_at", inside),
                              ("expired outside", "expires_at", outside)):
        rows[name] = services.issue_tokens(user).session_id
        Session.objects.filter(pk=rows[name]).update(**{field: when})
    assert "Would delete 2 session(s)." in run("--dry-run")
    assert "Deleted 2 session(s)." in run()
    assert remaining() == {rows[name] for name in rows if "outside" not in name}


def test_replay_goes_in_batches_and_tombstones_every_one(api, make_user, monkeypatch):
    tokens = [api.login_ok(make_user().username) for _ in range(5)]
    Session.objects.update(revoked_at=timezone.now(), revoked_reason="admin")  # Redis missed
    sizes = recorded_forgets(monkeypatch)
    assert mirror.replay_recent_revocations(batch_size=2) == 5
    assert sizes == [2, 2, 1]
    assert all(api.whoami(pair["access"]).status_code == 401 for pair in tokens)


def test_the_replay_after_an_outage_goes_in_batches(api, make_user, monkeypatch):
    """The first request after an outage replays what it missed, REPLAY_BATCH at a time."""
    tokens = [api.login_ok(make_user().username) for _ in range(5)]
    monkeypatch.setattr(recovery, "replay_when_answered", lambda replay: None)
    monkeypatch.setattr(mirror, "REPLAY_BATCH", 2)
    circuit.trip()  # Redis unreachable while they are revoked
    for pair in tokens:
        assert services.revoke_session(pair["session_id"])
    sizes = recorded_forgets(monkeypatch)
    circuit.down_until = 0.0  # Redis answers again
    assert all(api.whoami(pair["access"]).status_code == 401 for pair in tokens)
    assert sum(sizes) >= 5 and max(sizes) <= 2, sizes


def recorded_forgets(monkeypatch) -> list[int]:
    """The number of sessions each `store.forget` call is given, from now on."""
    sizes: list[int] = []
    real = type(store).forget

    def recording(self, sessions, tombstone=True):
        sessions = list(sessions)
        sizes.append(len(sessions))
        return real(self, sessions, tombstone)

    monkeypatch.setattr(type(store), "forget", recording)
    return sizes


def test_concurrent_runs_delete_each_row_once(make_user, jwt_settings):
    jwt_settings(REFRESH_TOKEN_LIFETIME=timedelta(days=1))
    users = [make_user() for _ in range(3)]
    with freeze_time("2020-01-01"):  # long expired: the threads run at the real time, as
        for i in range(30):           # freezegun's clock is global, not per thread
            services.issue_tokens(users[i % 3])
    results, errors = [], []

    def worker() -> None:
        from django.db import connection

        try:
            results.append(cleanup.clear_sessions(batch_size=4))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(r.deleted for r in results) == 30
    assert remaining() == set()


# ------------------------------------------------------------------ Redis
def test_prunes_index_entries_of_ended_and_vanished_sessions(api, user):
    live = api.login_ok(user.username)
    ended = api.login_ok(user.username)
    vanished = api.login_ok(user.username)
    # Redis missed these: a revocation written straight to the table (an hour ago: too
    # old to be replayed, too young to be deleted), and a deleted row.
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Session.objects.filter(pk=ended["session_id"]).update(revoked_at=an_hour_ago)
    with connection.cursor() as cursor:  # behind the ORM's back: no signal
        cursor.execute(f"DELETE FROM {Session._meta.db_table} WHERE id = %s",
                       [Session._meta.pk.get_db_prep_value(uuid.UUID(vanished["session_id"]),
                                                           connection)])
    hexes = {t["session_id"].replace("-", "") for t in (live, ended, vanished)}
    assert store.indexed_session_ids(user.pk) == hexes

    assert "Pruned 2 orphaned Redis entry(ies)." in run()
    assert store.indexed_session_ids(user.pk) == {live["session_id"].replace("-", "")}
    assert_error(api.whoami(ended["access"]), 401, "session_revoked")
    assert api.whoami(live["access"]).status_code == 200
    assert "Pruned 0 orphaned" in run()


def test_replays_a_revocation_redis_missed(api, user):
    tokens = api.login_ok(user.username)
    assert api.whoami(tokens["access"]).status_code == 200
    # Revoked while Redis was unreachable: the database knows, Redis still vouches.
    Session.objects.filter(pk=tokens["session_id"]).update(revoked_at=timezone.now(),
                                                           revoked_reason="admin")
    assert api.whoami(tokens["access"]).status_code == 200
    assert "Replayed 1 recent revocation(s) to Redis." in run()
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


def test_redis_down_still_deletes_rows_and_says_so(aged, monkeypatch):
    def down(*args, **kwargs):
        raise StoreUnavailable("ConnectionError")

    monkeypatch.setattr(store, "forget", down)
    monkeypatch.setattr(store, "indexed_session_ids", down)
    with freeze_time("2030-02-05"):
        out = run()
    assert "Deleted 2 session(s)." in out
    assert "Redis unavailable" in out
    assert remaining() == aged["kept"]


def test_a_row_deleted_through_the_orm_takes_its_redis_keys_along(api, user, redis_conn):
    """No orphan is left for the cleanup to find: the keys go when the delete commits
    (a cascade from its user, a queryset, the admin), one round trip per transaction."""
    tokens = [api.login_ok(user.username) for _ in range(3)]
    prefix = jwt_settings_prefix()
    pattern = f"{prefix}{{*}}:[sa]:*"  # session and access keys
    assert len(redis_conn.keys(pattern)) == 6  # two per session
    Session.objects.filter(user=user).delete()
    assert redis_conn.keys(pattern) == []
    assert store.indexed_session_ids(user.pk) == set()
    for body in tokens:
        assert_error(api.whoami(body["access"]), 401, "session_revoked")
        assert api.refresh(body["refresh"]).status_code == 401


def test_a_rolled_back_delete_keeps_the_keys(api, user, redis_conn):
    tokens = api.login_ok(user.username)
    with pytest.raises(RuntimeError), transaction.atomic():
        Session.objects.filter(user=user).delete()
        raise RuntimeError("rolled back")
    assert api.whoami(tokens["access"]).status_code == 200
    with transaction.atomic():
        Session.objects.filter(user=user).delete()
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


def jwt_settings_prefix() -> str:
    from jwt_sessions.conf import jwt_settings

    return jwt_settings.REDIS_KEY_PREFIX
