"""The `jwt_sessions` logger tells operators what happened, and never leaks a secret."""
from __future__ import annotations

import hashlib
import logging

import pytest

from jwt_sessions.models import Session
from jwt_sessions.redis.mirror import StoreUnavailable
from jwt_sessions.redis.store import store
from tests.conftest import PASSWORD, assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def lines(caplog) -> list[str]:
    """Every record of every logger, as a handler would write it (tracebacks included)."""
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return [formatter.format(record) for record in caplog.records]


def jwt_lines(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "jwt_sessions" and r.levelno == level]


def test_full_flow_logs_events_and_no_secret(api, user, caplog, jwt_settings, monkeypatch):
    jwt_settings(REFRESH_REUSE_GRACE=0)
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = [PASSWORD]

    first = api.login_ok(user.username)
    second = api.refresh_ok(first["refresh"])
    assert_error(api.refresh(first["refresh"]), 401, "refresh_token_reused")
    third = api.login_ok(user.username)
    assert api.whoami(third["access"]).status_code == 200
    with monkeypatch.context() as patch:
        def down(*args, **kwargs):
            raise StoreUnavailable("ConnectionError")

        patch.setattr(store, "check_access", down)
        assert api.whoami(third["access"]).status_code == 200  # database fallback
    from jwt_sessions.redis.mirror import circuit

    circuit.reset()
    assert api.logout(third["access"]).status_code == 204
    assert_error(api.login(user.username, password=PASSWORD + "-wrong"), 401,
                 "invalid_credentials")
    secrets.append(PASSWORD + "-wrong")

    for pair in (first, second, third):
        secrets += [pair["access"], pair["access"].rsplit(".", 1)[1], pair["refresh"],
                    pair["refresh"][22:], hashlib.sha256(pair["refresh"].encode()).hexdigest()]
    for session in Session.objects.all():
        secrets += [session.refresh_token_bcrypt, session.refresh_token_bcrypt[7:],
                    session.refresh_token_sha256, session.previous_refresh_token_sha256]
    logged = "\n".join(lines(caplog))
    for secret in filter(None, secrets):
        assert secret not in logged

    info = "\n".join(jwt_lines(caplog, logging.INFO))
    warning = "\n".join(jwt_lines(caplog, logging.WARNING))
    assert f"Session {first['session_id']} opened for user {user.pk}" in info
    assert f"Session {first['session_id']} refreshed" in info
    assert "Login failed" in info
    assert "revoked (reason: logout)" in info
    assert f"Refresh token reuse detected; session {first['session_id']}" in warning
    assert "Redis unavailable" in warning
    assert any("checking the database" in m for m in jwt_lines(caplog, logging.DEBUG))
