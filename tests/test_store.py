"""The Redis store: key names, TTLs, atomic scripts; and what Redis holds after real flows."""
import base64
import time
import uuid
from datetime import timedelta

import pytest

from jwt_sessions import counters
from jwt_sessions.redis import layout
from jwt_sessions.redis.mirror import HIT, MISS, REVOKED, SessionKeys
from jwt_sessions.redis.store import store

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def make_keys(user_id=7, sid=None) -> SessionKeys:
    return SessionKeys(sid or uuid.uuid4(), uuid.uuid4().hex * 2, uuid.uuid4().hex, user_id)


def all_keys(conn) -> dict[str, bytes | None]:
    """Every key of the test database with its value (SCAN: fine in a test, never on a
    request path)."""
    found = {}
    for key in conn.scan_iter(count=1000):
        kind = conn.type(key).decode()
        value = conn.get(key) if kind == "string" else repr(
            conn.smembers(key) if kind == "set" else conn.hgetall(key)).encode()
        found[key.decode()] = value
    return found


@pytest.fixture
def session_keys():
    keys = make_keys()
    assert store.put_session(keys, None, refresh_ttl=DAY, access_ttl=MINUTE)
    return keys


# ------------------------------------------------------------------ key names
def test_keys_of_one_session_share_a_hash_tag(session_keys):
    sid = session_keys.session_id
    names = [layout.session_key(sid, "a" * 64), layout.access_key(sid, "b"),
             layout.tombstone_key(sid)]
    tag = base64.urlsafe_b64encode(sid.bytes).rstrip(b"=").decode()
    assert {name.split("}")[0] + "}" for name in names} == {f"jwts:{{{tag}}}"}


def test_every_key_carries_the_configured_prefix(jwt_settings, redis_conn):
    jwt_settings(REDIS_KEY_PREFIX="myapp:auth:")
    keys = make_keys()
    store.put_session(keys, None, refresh_ttl=DAY, access_ttl=MINUTE)
    store.flush_counters({"redis_hits": 1})
    names = list(all_keys(redis_conn))
    assert len(names) == 4
    assert all(name.startswith("myapp:auth:") for name in names), names


# ------------------------------------------------------------------ put / check
def test_put_session_writes_pair_with_ttls(session_keys, redis_conn):
    sid = session_keys.session_id
    session_key = layout.session_key(sid, session_keys.refresh_sha256)
    access_key = layout.access_key(sid, session_keys.access_jti)
    assert redis_conn.get(session_key) == f"{session_keys.access_jti}|7|-".encode()
    assert redis_conn.get(access_key) == layout.token_part(session_keys.refresh_sha256).encode()
    assert 86_390_000 < redis_conn.pttl(session_key) <= 86_400_000
    assert 59_000 < redis_conn.pttl(access_key) <= 60_000
    assert redis_conn.hkeys(layout.user_index_key(7)) == [sid.hex.encode()]
    assert redis_conn.pttl(layout.user_index_key(7)) > 0


def test_check_access_hit_miss_and_revoked(session_keys):
    sid = session_keys.session_id
    assert store.check_access(sid, session_keys.access_jti) == HIT
    assert store.check_access(sid, "other-jti") == MISS
    store.forget([session_keys], tombstone=False)
    assert store.check_access(sid, session_keys.access_jti) == MISS
    store.forget([session_keys])
    assert store.check_access(sid, session_keys.access_jti) == REVOKED
    assert store.check_access(sid, "any-jti") == REVOKED


def test_put_session_is_refused_under_a_tombstone(session_keys, redis_conn):
    store.forget([session_keys])
    assert store.put_session(session_keys, None, refresh_ttl=DAY, access_ttl=MINUTE) is False
    sid = session_keys.session_id
    assert redis_conn.get(layout.access_key(sid, session_keys.access_jti)) is None
    assert redis_conn.get(layout.session_key(sid, session_keys.refresh_sha256)) is None


def test_put_session_replacing_drops_the_previous_pair(session_keys, redis_conn):
    new = SessionKeys(session_keys.session_id, "f" * 64, "new-jti", 7)
    assert store.put_session(new, None, refresh_ttl=DAY, access_ttl=MINUTE,
                             replaces=session_keys)
    sid = session_keys.session_id
    assert store.check_access(sid, session_keys.access_jti) == MISS
    assert redis_conn.get(layout.session_key(sid, session_keys.refresh_sha256)) is None
    assert store.check_access(sid, "new-jti") == HIT


def test_forget_tombstone_outlives_access_tokens(session_keys, redis_conn, jwt_settings):
    store.forget([session_keys])
    ttl = redis_conn.pttl(layout.tombstone_key(session_keys.session_id))
    assert timedelta(minutes=15) < timedelta(milliseconds=ttl) <= timedelta(minutes=15,
                                                                              seconds=5)
    assert redis_conn.hkeys(layout.user_index_key(7)) == []


def test_forget_without_tombstone_leaves_session_recacheable(session_keys):
    store.forget([session_keys], tombstone=False)
    assert store.check_access(session_keys.session_id, session_keys.access_jti) == MISS
    assert store.put_session(session_keys, None, refresh_ttl=DAY, access_ttl=MINUTE)


def test_forget_of_nothing_is_harmless():
    store.forget([])


# ------------------------------------------------------------------ rotate
def test_rotate_consumes_the_old_token_exactly_once(session_keys, redis_conn):
    sid, old_sha = session_keys.session_id, session_keys.refresh_sha256
    cached = store.rotate(sid, old_sha, "a" * 64, "jti-a", DAY, MINUTE)
    assert (cached.access_jti, cached.user_id, cached.absolute_end) == (
        session_keys.access_jti, "7", None)
    assert store.rotate(sid, old_sha, "b" * 64, "jti-b", DAY, MINUTE) is None
    assert store.check_access(sid, session_keys.access_jti) == MISS  # old access dropped
    assert store.check_access(sid, "jti-a") == HIT
    assert store.check_access(sid, "jti-b") == MISS
    assert redis_conn.get(layout.session_key(sid, "a" * 64)) == b"jti-a|7|-"


def test_rotate_unknown_token_is_none(session_keys):
    assert store.rotate(session_keys.session_id, "0" * 64, "a" * 64, "j", DAY, MINUTE) is None


def test_rotate_is_refused_under_a_tombstone(session_keys, redis_conn):
    sid = session_keys.session_id
    redis_conn.set(layout.tombstone_key(sid), 1, px=60_000)
    assert store.rotate(sid, session_keys.refresh_sha256, "a" * 64, "j", DAY, MINUTE) is None
    assert redis_conn.get(layout.session_key(sid, session_keys.refresh_sha256)) is not None


def test_rotate_caps_ttl_at_the_absolute_end(redis_conn):
    keys = make_keys()
    end = int(time.time()) + 3600
    store.put_session(keys, end, refresh_ttl=DAY, access_ttl=MINUTE)
    cached = store.rotate(keys.session_id, keys.refresh_sha256, "a" * 64, "j", DAY, MINUTE)
    assert cached.absolute_end == end
    ttl = redis_conn.pttl(layout.session_key(keys.session_id, "a" * 64))
    assert 3_590_000 < ttl <= 3_600_000


def test_rotate_after_the_absolute_end_is_refused():
    keys = make_keys()
    store.put_session(keys, int(time.time()) - 1, refresh_ttl=DAY, access_ttl=MINUTE)
    assert store.rotate(keys.session_id, keys.refresh_sha256, "a" * 64, "j", DAY, MINUTE) is None


# ------------------------------------------------------------------ index, counters
def test_user_index_lists_and_unindexes(session_keys):
    other = make_keys()
    store.put_session(other, None, refresh_ttl=DAY, access_ttl=MINUTE)
    assert store.indexed_session_ids(7) == {session_keys.session_id.hex, other.session_id.hex}
    store.unindex(7, [other.session_id.hex])
    store.unindex(7, [])
    assert store.indexed_session_ids(7) == {session_keys.session_id.hex}


def test_counters_add_up_and_expire(redis_conn, monkeypatch):
    store.flush_counters({"redis_hits": 2})
    counters.take_all()
    counters.record("redis_hits", 3)
    counters.record("refreshes")
    monkeypatch.setattr(counters, "_last_flush", 0.0)  # due: the check takes them itself
    store.check_access(uuid.uuid4(), "j")
    assert store.read_counters() == {"redis_hits": 5, "refreshes": 1}
    assert redis_conn.pttl(layout.stats_key()) > 0


# ------------------------------------------------------------------ after real flows
@pytest.mark.django_db
def test_no_plaintext_refresh_token_and_every_key_has_a_ttl(api, user, redis_conn):
    secrets = []
    first = api.login_ok(user.username)
    second = api.refresh_ok(first["refresh"])
    redis_conn.flushdb()
    third = api.refresh_ok(second["refresh"])  # database path, rehydrates Redis
    other = api.login_ok(user.username)
    api.whoami(third["access"])
    api.logout(other["access"])
    secrets += [first["refresh"], second["refresh"], third["refresh"], other["refresh"]]
    found = all_keys(redis_conn)
    assert len(found) >= 4
    for key, value in found.items():
        assert redis_conn.pttl(key) > 0, key
        for secret in secrets:
            for part in (secret, secret[:43], secret[22:65]):
                assert part not in key and part.encode() not in (value or b""), key
        for access in (first["access"], third["access"]):
            assert access not in key and access.encode() not in (value or b""), key


@pytest.mark.django_db
def test_flows_write_only_prefixed_keys(api, user, redis_conn, jwt_settings):
    """Every key, throttle counters included, carries REDIS_KEY_PREFIX."""
    jwt_settings(REDIS_KEY_PREFIX="tenant42|")
    data = api.login_ok(user.username)
    api.whoami(api.refresh_ok(data["refresh"])["access"])
    api.logout(api.login_ok(user.username)["access"])
    ours = all_keys(redis_conn)
    assert len(ours) >= 4 and any(key.startswith("tenant42|t:") for key in ours)
    assert all(key.startswith("tenant42|") for key in ours), ours
