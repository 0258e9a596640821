"""LOCAL_CACHE across real processes: a session revoked in another process is refused
here within the bound, and a silent partition ends trust by `max_age`.

The other process is a child Python that revokes through `jwt_sessions.api` against the
same database and its own connection to the same redis-server; this process goes through
a TCP proxy that can drop packets silently.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from jwt_sessions import access, events
from jwt_sessions.exceptions import SessionRevoked
from jwt_sessions.redis import local_cache
from tests.polling import eventually

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT = 0.1
MAX_AGE = 2.0
# Another process's revocation, seen here: milliseconds on a quiet machine; the bound is
# generous because other jobs share the cores.
EVENT_BOUND = 1.0

REVOKER = """
import sys, time, django
django.setup()
from jwt_sessions import api
print("ready", flush=True)
for line in sys.stdin:
    assert api.revoke_session(line.strip())
    print(time.monotonic(), flush=True)
"""


def database_url() -> str:
    """The URL of the test database this process uses, for the child."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return (f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/"
            f"{settings['NAME']}")


class Revoker:
    """A child process that revokes sessions on request and says when each call returned."""

    def __init__(self, redis_url: str) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
               "REDIS_URL": redis_url, "DATABASE_URL": database_url(),
               "PYTHONPATH": str(ROOT)}
        self.child = subprocess.Popen([sys.executable, "-c", REVOKER], env=env, cwd=ROOT,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True)
        assert self.child.stdout.readline().strip() == "ready"

    def revoke(self, session_id: str) -> float:
        """Revoke in the child; the monotonic time its call returned (one clock per host)."""
        self.child.stdin.write(f"{session_id}\n")
        self.child.stdin.flush()
        return float(self.child.stdout.readline())

    def close(self) -> None:
        self.child.stdin.close()
        assert self.child.wait(10) == 0


@pytest.fixture(autouse=True)
def _local_cache_on(through_proxy, jwt_settings):
    jwt_settings(EVENTS_HEARTBEAT=HEARTBEAT,
                 LOCAL_CACHE={"max_age": timedelta(seconds=MAX_AGE), "max_entries": 1000})


@pytest.fixture
def revoker(redis_server):
    child = Revoker(redis_server.url)  # its own link to Redis, not through the proxy
    yield child
    child.close()


def cached(api, user) -> dict:
    """A session whose access token this process now answers from memory."""
    tokens = api.login_ok(user.username)
    cache = local_cache.current()  # the first use subscribes to the events
    assert events.wait_until_healthy(5)
    access.authenticate_access(tokens["access"])
    hits = cache.hits
    access.authenticate_access(tokens["access"])
    assert cache.hits == hits + 1
    return tokens


def first_refusal(token: str, timeout: float) -> float:
    """Spin on the access check until it is refused; the monotonic time of that refusal."""
    def refused() -> bool:
        try:
            access.authenticate_access(token)
        except SessionRevoked:
            return True
        return False

    eventually(refused, timeout, "the access check to refuse the revoked token", 0)
    return time.monotonic()


def test_revoked_in_another_process_is_refused_here_within_the_bound(api, user, revoker):
    delays = []
    for _ in range(5):
        tokens = cached(api, user)
        returned = revoker.revoke(tokens["session_id"])
        delays.append(first_refusal(tokens["access"], timeout=MAX_AGE + 1) - returned)
    assert max(delays) < EVENT_BOUND, delays


def test_a_silent_partition_ends_trust_by_max_age(api, user, revoker, proxy):
    tokens = cached(api, user)
    proxy.cut("blackhole")  # this process hears nothing more, and no error says so
    returned = revoker.revoke(tokens["session_id"])
    refused = first_refusal(tokens["access"], timeout=MAX_AGE + 2)
    # The heartbeat ends trust after 3 beats; the check then asks Redis, waits out its
    # socket timeout and falls back to the database, which knows the revocation.
    assert refused - returned <= MAX_AGE
    proxy.restore()


def test_trust_resumes_after_the_partition_heals(api, user, proxy):
    tokens = cached(api, user)
    proxy.cut("blackhole")
    eventually(lambda: not len(local_cache.current()), 2, "a gap to empty the cache", 0.01)
    assert not events.healthy()
    proxy.restore()
    assert events.wait_until_healthy(10)
    time.sleep(0.25)  # past REDIS_RETRY_INTERVAL: Redis is asked again
    access.authenticate_access(tokens["access"])
    access.authenticate_access(tokens["access"])
    assert local_cache.current().hits >= 1
