"""The API through Redis Sentinel (django-redis's SentinelClient), across a failover."""
from __future__ import annotations

import time

import pytest

from tests.async_checks import assert_async_check_answers
from tests.conftest import assert_error
from tests.polling import eventually
from tests.redis_servers import forget_redis_pools, start_redis, start_sentinel

pytestmark = pytest.mark.django_db(transaction=True)

RETRY = 0.2
FAILOVER_TIMEOUT = 30.0


@pytest.fixture
def sentinel_setup(settings, jwt_settings):
    primary = start_redis()
    replica = start_redis(extra_args=["--replicaof", "127.0.0.1", str(primary.port)])
    sentinel = start_sentinel(primary)
    forget_redis_pools()
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://{sentinel.name}/0",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": [("127.0.0.1", sentinel.port)],
            "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5,
        },
    }}
    jwt_settings(REDIS_RETRY_INTERVAL=RETRY)
    yield primary, replica, sentinel
    forget_redis_pools()
    for server in (sentinel, replica, primary):
        server.close()


def test_flows_survive_a_sentinel_failover(api, user, sentinel_setup, queries):
    primary, replica, sentinel = sentinel_setup
    tokens = api.login_ok(user.username)
    with queries() as q:
        assert api.whoami(tokens["access"]).status_code == 200
    assert len(q.captured_queries) == 0  # served by the primary found through Sentinel

    with sentinel.client() as conn:
        eventually(lambda: conn.execute_command("SENTINEL", "REPLICAS", sentinel.name),
                   FAILOVER_TIMEOUT, "the sentinel to see the replica", 0.1)
        eventually(lambda: replica.client().info("replication")["master_link_status"] == "up",
                   FAILOVER_TIMEOUT, "the replica to sync", 0.1)
        conn.execute_command("SENTINEL", "FAILOVER", sentinel.name)
        eventually(lambda: int(conn.execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", sentinel.name)[1]) == replica.port,
            FAILOVER_TIMEOUT, "the failover", 0.1)
    eventually(lambda: replica.client().info("replication")["role"] == "master",
               FAILOVER_TIMEOUT, "the replica to be promoted", 0.1)

    assert api.whoami(tokens["access"]).status_code == 200  # database if the link broke
    time.sleep(RETRY + 0.1)
    refreshed = api.refresh_ok(tokens["refresh"])
    with queries() as q:
        assert api.whoami(refreshed["access"]).status_code == 200
    assert len(q.captured_queries) == 0  # the new primary serves it
    assert api.logout(refreshed["access"]).status_code == 204
    assert_error(api.whoami(refreshed["access"]), 401, "session_revoked")


def test_revocation_events_through_sentinel(api, user, sentinel_setup):
    """The receiver subscribes on the primary the Sentinel pool finds."""
    from jwt_sessions import events
    from tests.event_consumers import Heard, is_event

    heard = Heard()
    unsubscribe = events.subscribe(heard)
    try:
        assert events.wait_until_healthy(10)
        tokens = api.login_ok(user.username)
        assert api.logout(tokens["access"]).status_code == 204
        heard.wait_for(is_event(events.REVOKED, tokens["session_id"]))
    finally:
        unsubscribe()
        events.stop()  # before the servers go


def test_an_async_access_check_with_counters_due_answers_through_sentinel(
        api, user, sentinel_setup, queries, monkeypatch):
    assert_async_check_answers(api, user.username, queries, monkeypatch)
