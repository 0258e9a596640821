"""LOCAL_CACHE: repeat checks answered from memory, and never a revoked token accepted
beyond the bounds: at once in the revoking process, on the event elsewhere, never while
the events cannot be trusted."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import override_settings

from jwt_sessions import services
from jwt_sessions.redis import events, local_cache
from jwt_sessions.redis.local_cache import LocalCache
from jwt_sessions.redis.store import store
from jwt_sessions.tokens import decode_access_token
from tests.conftest import assert_error
from tests.polling import eventually
from tests.test_events import keys_of_tokens

pytestmark = pytest.mark.django_db(transaction=True)

CACHE = {"max_age": timedelta(seconds=30), "max_entries": 100}


@pytest.fixture
def cache_on(jwt_settings):
    jwt_settings(LOCAL_CACHE=CACHE)
    cache = local_cache.current()
    assert events.wait_until_healthy(5)
    return cache


def warm(api, access: str) -> None:
    """Two requests: the first asks Redis and remembers, the second is served from memory."""
    assert api.whoami(access).status_code == 200
    cache = local_cache.current()
    hits = cache.hits
    assert api.whoami(access).status_code == 200
    assert cache.hits == hits + 1


# ------------------------------------------------------------------ hits
def test_a_cached_hit_costs_no_sql_and_no_redis(api, tokens, cache_on, queries, round_trips):
    warm(api, tokens["access"])
    round_trips[0] = 0
    with queries() as q:
        for _ in range(10):
            assert api.whoami(tokens["access"]).status_code == 200
    assert len(q.captured_queries) == 0
    assert round_trips[0] == 0


def test_off_by_default_one_round_trip_per_request(api, tokens, round_trips):
    assert local_cache.current() is None
    api.whoami(tokens["access"])
    round_trips[0] = 0
    for _ in range(3):
        assert api.whoami(tokens["access"]).status_code == 200
    assert round_trips[0] == 3


def test_override_settings_turns_it_on_and_off(api, tokens, round_trips):
    with override_settings(JWT_SESSIONS={"BCRYPT_ROUNDS": 4, "LOCAL_CACHE": CACHE}):
        cache = local_cache.current()
        assert cache is not None and cache.max_entries == 100
        assert events.wait_until_healthy(5)
        warm(api, tokens["access"])
    assert local_cache.current() is None
    round_trips[0] = 0
    assert api.whoami(tokens["access"]).status_code == 200
    assert round_trips[0] == 1
    events.stop()


def test_only_a_redis_hit_is_remembered(api, tokens, cache_on, redis_conn):
    redis_conn.flushdb()  # a miss: the database answers and rehydrates
    assert api.whoami(tokens["access"]).status_code == 200
    assert len(cache_on) == 0
    assert api.whoami(tokens["access"]).status_code == 200  # now a Redis hit
    assert len(cache_on) == 1


# ------------------------------------------------------------------ revocation
def test_own_revocation_is_refused_at_once_without_the_event(api, tokens, cache_on,
                                                             monkeypatch):
    warm(api, tokens["access"])
    monkeypatch.setattr(events, "_dispatch", lambda event: None)  # no loopback at all
    assert api.logout(tokens["access"]).status_code == 204
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


def test_own_rotation_refuses_the_old_token_at_once(api, tokens, cache_on, monkeypatch):
    warm(api, tokens["access"])
    monkeypatch.setattr(events, "_dispatch", lambda event: None)
    fresh = api.refresh_ok(tokens["refresh"])
    assert_error(api.whoami(tokens["access"]), 401, "token_invalid")
    assert api.whoami(fresh["access"]).status_code == 200


def test_revocation_elsewhere_is_refused_on_its_event(api, tokens, user, cache_on):
    warm(api, tokens["access"])
    store.forget([keys_of_tokens(tokens, user)])  # what another process's revoke writes
    eventually(lambda: not cache_on.holds(uuid.UUID(tokens["session_id"]),
                                          decode_access_token(tokens["access"]).jti),
               2.0, "the revocation event to drop the entry", 0.002)
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


def test_a_gap_empties_the_cache(api, tokens, cache_on):
    warm(api, tokens["access"])
    events._dispatch(events.SessionEvent(events.GAP, None))
    assert len(cache_on) == 0


def test_untrusted_events_mean_no_cache(api, tokens, cache_on, round_trips):
    warm(api, tokens["access"])
    events.stop()  # no receiver: nothing proves the events arrive
    round_trips[0] = 0
    assert not events.healthy()
    assert api.whoami(tokens["access"]).status_code == 200
    assert round_trips[0] == 1
    assert events.wait_until_healthy(5)  # the consumer restarted it lazily


# ------------------------------------------------------------------ the cache itself
@pytest.fixture
def trusted(monkeypatch):
    """The events are live and nothing has arrived unread."""
    monkeypatch.setattr(events, "healthy", lambda: True)
    monkeypatch.setattr(events, "drain", lambda: True)


def test_max_entries_is_respected_least_recently_used_first(trusted):
    cache = LocalCache(max_age=30, max_entries=3)
    ids = [uuid.uuid4() for _ in range(5)]
    for sid in ids[:3]:
        cache.keep(sid, "j", cache.version())
    assert cache.holds(ids[0], "j")  # used: now the most recent
    for sid in ids[3:]:
        cache.keep(sid, "j", cache.version())
    assert len(cache) == 3
    assert [cache.holds(sid, "j") for sid in ids] == [True, False, False, True, True]


def test_an_entry_is_trusted_at_most_max_age(trusted, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(local_cache.time, "monotonic", lambda: now[0])
    cache = LocalCache(max_age=5, max_entries=10)
    sid = uuid.uuid4()
    cache.keep(sid, "j", cache.version())
    now[0] += 4.9
    assert cache.holds(sid, "j")
    now[0] += 0.2
    assert not cache.holds(sid, "j")


def test_only_the_current_jti_of_a_session_is_held(trusted):
    cache = LocalCache(max_age=30, max_entries=10)
    sid = uuid.uuid4()
    cache.keep(sid, "new", cache.version())
    assert not cache.holds(sid, "old")


def test_a_lookup_racing_a_revocation_cannot_put_the_token_back(trusted):
    cache = LocalCache(max_age=30, max_entries=10)
    sid, other = uuid.uuid4(), uuid.uuid4()
    before = cache.version()  # a request asks Redis: HIT
    cache.drop([sid])  # meanwhile the session is revoked and its event arrives
    cache.keep(sid, "j", before)  # the request's late answer
    assert not cache.holds(sid, "j")
    cache.keep(other, "j", before)  # an unrelated session is kept
    assert cache.holds(other, "j")


def test_a_lookup_racing_a_gap_cannot_keep(trusted):
    cache = LocalCache(max_age=30, max_entries=10)
    sid = uuid.uuid4()
    before = cache.version()
    cache.clear()
    cache.keep(sid, "j", before)
    assert not cache.holds(sid, "j")


def test_when_too_many_drops_to_remember_racing_lookups_are_refused(trusted, monkeypatch):
    monkeypatch.setattr(local_cache, "_REMEMBERED_DROPS", 2)
    cache = LocalCache(max_age=30, max_entries=10)
    sid = uuid.uuid4()
    before = cache.version()
    cache.drop([sid])
    cache.drop([uuid.uuid4(), uuid.uuid4()])  # the record of sid's drop is gone
    cache.keep(sid, "j", before)
    assert not cache.holds(sid, "j")


def test_nothing_is_kept_while_the_events_are_untrusted(monkeypatch):
    monkeypatch.setattr(events, "healthy", lambda: False)
    cache = LocalCache(max_age=30, max_entries=10)
    sid = uuid.uuid4()
    cache.keep(sid, "j", cache.version())
    assert len(cache) == 0


def test_a_process_that_only_revokes_starts_no_receiver(tokens, jwt_settings):
    import threading

    jwt_settings(LOCAL_CACHE=CACHE)
    assert services.revoke_session(tokens["session_id"])
    assert not any(t.name == "jwt_sessions-events" for t in threading.enumerate())
