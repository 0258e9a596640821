"""Every query of a request path (and of cleanup) uses an index: EXPLAIN on PostgreSQL.

The table is filled with enough rows for the planner to care, ANALYZEd, and the real
flows run while their SQL is captured; each captured statement on the session table is
then EXPLAINed (not executed). A Seq Scan on it would mean a missing or unusable index.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jwt_sessions import services
from jwt_sessions.models import Session
from jwt_sessions.redis import mirror

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="EXPLAIN plans are checked on PostgreSQL (live mode)"),
]

TABLE = Session._meta.db_table
USERS, SESSIONS_PER_USER = 5000, 8


def _fill_table() -> None:
    """40,000 sessions of 5,000 users: mostly active, some revoked recently, 1% stale."""
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bulk{n}", password="!") for n in range(USERS))
    now = timezone.now()
    rows = []
    for n in range(USERS * SESSIONS_PER_USER):
        revoked = now - timedelta(days=n % 20) if n % 10 == 0 else None
        expires = now - timedelta(days=40) if n % 100 == 1 else now + timedelta(days=20)
        rows.append(Session(
            user=users[n % USERS], refresh_token_bcrypt="$2b$04$" + "x" * 53,
            refresh_token_sha256=secrets.token_hex(32), access_jti=secrets.token_hex(16),
            created_at=now - timedelta(days=30), last_activity_at=now - timedelta(minutes=n),
            expires_at=expires, revoked_at=revoked, revoked_reason="logout" if revoked else ""))
    Session.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")


def _plans(captured) -> dict[str, str]:
    """The plan of each captured statement that reads or writes the session table."""
    plans = {}
    with connection.cursor() as cursor:
        for query in captured:
            sql = query["sql"]
            verb = sql.lstrip().split(" ", 1)[0].upper()
            if TABLE not in sql or verb not in ("SELECT", "UPDATE", "DELETE"):
                continue
            cursor.execute(f"EXPLAIN {sql}")
            plans[sql] = "\n".join(row[0] for row in cursor.fetchall())
    return plans


def test_request_path_and_cleanup_queries_use_indexes(api, make_user, redis_conn,
                                                      jwt_settings):
    _fill_table()
    jwt_settings(MAX_SESSIONS_PER_USER=3, LAST_ACTIVITY_RESOLUTION=0)
    user = make_user()
    with CaptureQueriesContext(connection) as ctx:
        first, second, third = (api.login_ok(user.username) for _ in range(3))
        api.login_ok(user.username)  # over the limit: the least recently active goes
        redis_conn.flushdb()  # authenticate and refresh now fall back to the database
        assert api.whoami(second["access"]).status_code == 200
        refreshed = api.refresh_ok(third["refresh"])
        refreshed = api.refresh_ok(refreshed["refresh"])  # the Redis path's swap
        assert api.sessions(refreshed["access"]).status_code == 200
        assert api.delete_session(refreshed["access"], second["session_id"]).status_code == 204
        assert api.logout(refreshed["access"]).status_code == 204
        services.revoke_user_sessions(user, reason="admin")
        mirror.replay_recent_revocations()
        call_command("clearjwtsessions", stdout=open("/dev/null", "w"))  # noqa: SIM115
    plans = _plans(ctx.captured_queries)
    assert len(plans) >= 10, list(plans)
    scans = {sql: plan for sql, plan in plans.items() if f"Seq Scan on {TABLE}" in plan}
    assert not scans, "\n\n".join(f"{sql}\n{plan}" for sql, plan in scans.items())
