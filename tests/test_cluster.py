"""The whole API on a real 3-master Redis Cluster, through jwt_sessions.cluster."""
from __future__ import annotations

import pytest

from jwt_sessions import stats
from jwt_sessions.redis.store import store
from tests.async_checks import assert_async_check_answers
from tests.conftest import assert_error
from tests.redis_servers import forget_redis_pools, point_cache_at, start_cluster
from tests.store_writes import EVERY_WRITE, FACES

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def cluster():
    nodes = start_cluster(masters=3)
    yield nodes
    nodes.close()


@pytest.fixture(autouse=True)
def _on_cluster(settings, cluster):
    point_cache_at(settings, cluster.url,
                   CONNECTION_FACTORY="jwt_sessions.cluster.ClusterConnectionFactory")
    from django_redis import get_redis_connection

    get_redis_connection("default").flushdb()
    yield
    forget_redis_pools()


def _keys_per_node(cluster) -> list[int]:
    counts = []
    for node in cluster.nodes:
        with node.client() as conn:
            counts.append(conn.dbsize())
    return counts


def test_login_whoami_refresh_logout_on_a_cluster(api, make_user, cluster, queries):
    user = make_user()
    tokens = api.login_ok(user.username)
    with queries() as q:
        assert api.whoami(tokens["access"]).json()["id"] == user.pk
    assert len(q.captured_queries) == 0  # served by the cluster
    refreshed = api.refresh_ok(tokens["refresh"])
    assert_error(api.whoami(tokens["access"]), 401, "token_invalid")
    assert api.whoami(refreshed["access"]).status_code == 200
    assert api.logout(refreshed["access"]).status_code == 204
    assert_error(api.whoami(refreshed["access"]), 401, "session_revoked")
    assert_error(api.refresh(refreshed["refresh"]), 401, "session_revoked")


def test_logout_all_across_slots_on_a_cluster(api, make_user, cluster):
    user = make_user()
    sessions = [api.login_ok(user.username) for _ in range(12)]
    # The sessions' keys spread over the masters: one pipeline spans several nodes.
    assert sum(1 for count in _keys_per_node(cluster) if count) >= 2
    assert api.logout_all(sessions[0]["access"], {"keep_current": True}).status_code == 204
    assert api.whoami(sessions[0]["access"]).status_code == 200
    for tokens in sessions[1:]:
        assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    assert store.indexed_session_ids(user.pk) == {sessions[0]["session_id"].replace("-", "")}
    assert api.logout_all(sessions[0]["access"]).status_code == 204
    assert_error(api.whoami(sessions[0]["access"]), 401, "session_revoked")


def test_flushed_cluster_rehydrates_and_counts(api, make_user, cluster):
    user = make_user()
    tokens = api.login_ok(user.username)
    for node in cluster.nodes:
        with node.client() as conn:
            conn.flushall()
    assert api.whoami(tokens["access"]).status_code == 200  # database, then rehydrated
    assert api.whoami(api.refresh_ok(tokens["refresh"])["access"]).status_code == 200
    counts = stats.snapshot()
    assert counts["redis_misses"] >= 1 and counts["refreshes"] >= 1


def test_revocation_events_on_a_cluster(api, make_user, cluster):
    """Classic pub/sub reaches every node: one subscription hears revocations and
    rotations whichever node holds the session's slot."""
    from jwt_sessions import events
    from jwt_sessions.tokens import decode_access_token
    from tests.event_consumers import Heard, is_event

    heard = Heard()
    unsubscribe = events.subscribe(heard)
    try:
        assert events.wait_until_healthy(10)
        user = make_user()
        sessions = [api.login_ok(user.username) for _ in range(6)]  # slots on every node
        for pair in sessions[:3]:
            api.refresh_ok(pair["refresh"])
            heard.wait_for(is_event(events.ROTATED, pair["session_id"],
                                    decode_access_token(pair["access"]).jti))
        assert api.logout_all(sessions[3]["access"]).status_code == 204
        for pair in sessions:
            heard.wait_for(is_event(events.REVOKED, pair["session_id"]))
    finally:
        unsubscribe()
        events.stop()


def test_an_access_check_that_flushes_counters_works_on_a_cluster(monkeypatch):
    import uuid

    from jwt_sessions import counters
    from jwt_sessions.redis.mirror import MISS

    counters.take_all()
    before = store.read_counters().get("redis_hits", 0)
    counters.record("redis_hits", 3)
    monkeypatch.setattr(counters, "_last_flush", 0.0)
    assert store.check_access(uuid.uuid4(), "a-jti") == MISS
    assert store.read_counters()["redis_hits"] == before + 3


def test_an_async_access_check_with_counters_due_answers_on_a_cluster(
        api, make_user, queries, monkeypatch):
    """A cluster pipeline has no MGET: the async check reads the two keys of one slot as
    the sync one does, flushes the counters, and leaves the circuit closed."""
    assert_async_check_answers(api, make_user().username, queries, monkeypatch)


@pytest.mark.parametrize("face", FACES, ids=repr)
@pytest.mark.parametrize("check", EVERY_WRITE, ids=lambda check: check.__name__)
def test_a_write_through_either_face_on_a_cluster(check, face):
    """No multi-key command, script or PUBLISH in a cluster pipeline: each write's plan
    says so once, and both faces follow it, across slots and nodes."""
    from django_redis import get_redis_connection

    check(face, get_redis_connection("default"))


def test_introspection_checks_both_tokens_across_slots_on_a_cluster(api, make_user):
    from django.contrib.auth.models import Permission

    gateway = make_user()
    gateway.user_permissions.add(Permission.objects.get(codename="introspect_session"))
    caller = api.login_ok(gateway.username)["access"]
    user = make_user()
    sessions = [api.login_ok(user.username) for _ in range(6)]  # some in other slots
    api.logout(sessions[0]["access"])
    for index, session in enumerate(sessions):
        resp = api.client.post("/auth/introspect/", f"token={session['access']}",
                               content_type="application/x-www-form-urlencoded",
                               HTTP_AUTHORIZATION=f"Bearer {caller}")
        assert resp.json()["active"] is (index != 0)


def test_a_dpop_bound_session_on_a_cluster(api, make_user):
    """The proof's jti is claimed in the access check's pipeline (same slot as the
    session's keys): a replay is refused, a fresh proof passes."""
    from tests.dpop_keys import ProofKey

    user, key = make_user(), ProofKey()
    login = api.login(user.username, HTTP_DPOP=key.proof("POST", "http://testserver/auth/login/"))
    access = login.json()["access"]
    whoami = "http://testserver/api/whoami/"
    proof = key.proof("GET", whoami, token=access)
    headers = {"HTTP_AUTHORIZATION": f"DPoP {access}", "HTTP_DPOP": proof}
    assert api.client.get("/api/whoami/", **headers).status_code == 200
    replayed = api.client.get("/api/whoami/", **headers)
    assert replayed.status_code == 401 and replayed.json()["code"] == "invalid_dpop_proof"
    headers["HTTP_DPOP"] = key.proof("GET", whoami, token=access)
    assert api.client.get("/api/whoami/", **headers).status_code == 200
