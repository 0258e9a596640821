"""Events are hints, never authority: a message on the events channel can make a process
look, never refuse a live token or close a live session's socket by itself; a publisher
who cannot write keys cannot fake the liveness proof; a revocation made while the
breaker is open reaches Redis as soon as Redis answers; and a process whose only thread
is busy still hears a revocation at its next check."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import pytest

from jwt_sessions import access, events, services
from jwt_sessions.exceptions import SessionRevoked
from jwt_sessions.redis import events as receivers
from jwt_sessions.redis import layout, local_cache
from jwt_sessions.redis.layout import EVENT_REVOKED
from jwt_sessions.redis.store import store
from tests.redis_servers import forget_redis_pools, point_cache_at

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL_CACHE = {"max_age": 30, "max_entries": 100}


def publish_forged_revocation(redis_conn, session_id) -> None:
    """What anyone allowed to PUBLISH can send: the channel is fixed, the session id is
    in every access token."""
    redis_conn.publish(layout.events_channel(),
                       EVENT_REVOKED + layout.event_record(uuid.UUID(str(session_id))))


def cached(tokens: dict) -> bool:
    claims = access.decode_claims(tokens["access"])
    cache = local_cache.current()
    return cache is not None and cache.holds(claims.session_id, claims.jti)


@pytest.fixture
def real_redis(settings, redis_server):
    point_cache_at(settings, redis_server.url)
    yield redis_server
    forget_redis_pools()


# ------------------------------------------------------------------ forged events
def test_events_forged_revocation_costs_one_lookup_and_keeps_the_token(
        api, user, jwt_settings, redis_conn, heard, round_trips):
    jwt_settings(LOCAL_CACHE=LOCAL_CACHE)
    assert events.wait_until_healthy(5)
    tokens = api.login_ok(user.username)
    assert api.whoami(tokens["access"]).status_code == 200
    assert cached(tokens)
    publish_forged_revocation(redis_conn, tokens["session_id"])
    heard.wait_for(lambda e: e.kind == events.REVOKED)
    before = round_trips[0]
    assert api.whoami(tokens["access"]).status_code == 200  # Redis asked: still live
    assert round_trips[0] - before == 1
    assert api.whoami(tokens["access"]).status_code == 200 and cached(tokens)


def test_events_forged_revocation_keeps_a_live_sessions_socket_after_one_lookup(
        api, tokens, redis_conn, monkeypatch):
    from jwt_sessions import channels
    from tests.test_channels import handshake

    looked_up: list[list[uuid.UUID]] = []
    real = channels._live_sessions

    def counting(session_ids):
        looked_up.append(list(session_ids))
        return real(session_ids)

    monkeypatch.setattr(channels, "_live_sessions", counting)
    # A loaded machine can let the events' proof age past the trust window, which
    # rightly re-checks every socket; this test counts only the forged event's lookup.
    monkeypatch.setattr(channels.events, "proof_age", lambda: 0.0)

    async def forge_then_ping(communicator):
        import asyncio

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, events.wait_until_healthy, 5)
        looked_up.clear()  # the handshake's own lookup
        await loop.run_in_executor(None, publish_forged_revocation, redis_conn,
                                   tokens["session_id"])
        await asyncio.sleep(0.5)
        return await communicator.receive_nothing(timeout=0.2)

    connected, _, nothing_came = handshake(tokens["access"], then=forge_then_ping)
    assert connected and nothing_came  # no close
    assert looked_up == [[uuid.UUID(tokens["session_id"])]]


def test_events_forged_heartbeats_do_not_prove_the_events_live(jwt_settings, redis_conn,
                                                               monkeypatch):
    """The receiver's own beats stop reaching Redis; a publisher floods its heartbeat
    channel (listed by PUBSUB CHANNELS) with every beat it can guess and replays every
    one it sees. The events must stop counting as live within the heartbeat bound."""
    jwt_settings(EVENTS_HEARTBEAT=0.2)
    unsubscribe = events.subscribe(lambda event: None)
    try:
        assert events.wait_until_healthy(5)
        from jwt_sessions.redis import events as receiving

        receiver = receiving._receiver
        assert receiver is not None
        channel = layout.heartbeat_channel(receiver.id)
        monkeypatch.setattr(type(store), "publish_heartbeat", lambda *args: None)
        stop = threading.Event()

        def forge() -> None:
            listener = redis_conn.pubsub()
            listener.subscribe(channel)
            seen: list[bytes] = []
            while not stop.is_set():
                message = listener.get_message(timeout=0.005)
                if message and message["type"] == "message":
                    seen.append(message["data"])
                for guess in [*(b"%d" % n for n in range(200)), *seen[-20:]]:
                    redis_conn.publish(channel, guess)
            listener.close()

        forger = threading.Thread(target=forge)
        forger.start()
        try:
            deadline = time.monotonic() + 3 * 0.2 + 1.0
            while events.healthy() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not events.healthy(), "forged beats kept the events trusted"
        finally:
            stop.set()
            forger.join(5)
    finally:
        unsubscribe()


# ------------------------------------------------------------------ the breaker
@pytest.mark.parametrize("revoked", ["during the cut", "after Redis answers again"])
def test_events_revocation_made_while_the_breaker_is_open_reaches_redis_when_it_answers(
        api, user, make_user, settings, jwt_settings, redis_server, proxy, revoked):
    """Revoked during a cut, or after Redis is back but before the breaker's interval
    has ended: either way the tombstone and the event reach Redis as soon as it answers."""
    jwt_settings(REDIS_RETRY_INTERVAL=60)  # the interval must not be what replays it
    point_cache_at(settings, proxy.url())
    try:
        tokens = api.login_ok(user.username)
        session_id = uuid.UUID(tokens["session_id"])
        listener = redis_server.client().pubsub()
        listener.subscribe(layout.events_channel())
        proxy.cut()
        if revoked == "during the cut":
            assert services.revoke_session(session_id)  # the database; Redis cannot hear it
            time.sleep(0.3)
            proxy.restore()
        else:
            other = api.login_ok(make_user().username)  # Redis cannot hear this either
            assert services.revoke_session(other["session_id"])  # opens the breaker
            proxy.restore()
            time.sleep(0.5)  # Redis answers; this process's breaker is open for 60 s
            assert services.revoke_session(session_id)
        answered = time.monotonic()
        direct = redis_server.client()
        while not direct.exists(layout.tombstone_key(session_id)):
            assert time.monotonic() - answered < 1.0, "no tombstone a second after Redis answered"
            time.sleep(0.01)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            message = listener.get_message(timeout=0.05)
            if message and message["type"] == "message":
                kind, records = layout.parse_event(message["data"])
                if kind == EVENT_REVOKED and session_id in [r[0] for r in records]:
                    break
        else:
            pytest.fail("no revocation event a second after Redis answered")
        listener.close()
    finally:
        forget_redis_pools()


# ------------------------------------------------------------------ a busy process
_REVOKER = """
import sys, time, redis
r = redis.Redis(port=int(sys.argv[1]))
r.ping()
print("ready", flush=True)
sys.stdin.readline()
time.sleep(0.3)  # the test process is busy by now
pipe = r.pipeline(transaction=False)
pipe.set(sys.argv[2], 1, px=60000)
pipe.publish(sys.argv[3], bytes.fromhex(sys.argv[4]))
pipe.execute()
print(time.monotonic(), flush=True)
"""


def test_events_a_cpu_bound_process_refuses_a_revoked_token_at_its_next_check(
        api, user, jwt_settings, real_redis):
    """Another process revokes (tombstone and event, as the store writes them) while this
    process's only busy thread never lets the receiver run (a long GIL switch interval):
    its next check must not answer from the LOCAL_CACHE."""
    jwt_settings(LOCAL_CACHE=LOCAL_CACHE)
    tokens = api.login_ok(user.username)
    session_id = uuid.UUID(tokens["session_id"])
    access.authenticate_access(tokens["access"])
    assert events.wait_until_healthy(5)
    access.authenticate_access(tokens["access"])
    assert cached(tokens)
    message = EVENT_REVOKED + layout.event_record(session_id)
    revoker = subprocess.Popen(
        [sys.executable, "-c", _REVOKER, str(real_redis.port), layout.tombstone_key(session_id),
         layout.events_channel(), message.hex()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert revoker.stdout is not None and revoker.stdin is not None
        assert revoker.stdout.readline().strip() == "ready"
        interval = sys.getswitchinterval()
        sys.setswitchinterval(2.0)
        try:
            revoker.stdin.write("go\n")
            revoker.stdin.flush()
            started, refused_at = time.monotonic(), None
            while time.monotonic() - started < 3:
                sum(range(2000))  # busy: no blocking call that would hand the GIL over
                try:
                    access.authenticate_access(tokens["access"])
                except SessionRevoked:
                    refused_at = time.monotonic()
                    break
        finally:
            sys.setswitchinterval(interval)
        revoked_at = float(revoker.stdout.readline())
        assert refused_at is not None, "still accepted 3 s after another process revoked"
        assert refused_at - revoked_at < 0.05, f"refused {refused_at - revoked_at:.3f} s late"
    finally:
        revoker.kill()
        revoker.wait(5)


def test_events_drained_on_the_request_path_reach_every_consumer_once(
        api, user, jwt_settings, real_redis):
    """Events read by a check (not by the receiver) are handed to every consumer, once."""
    from tests.event_consumers import Heard

    jwt_settings(LOCAL_CACHE=LOCAL_CACHE)
    heard = Heard()
    unsubscribe = events.subscribe(heard)
    try:
        assert events.wait_until_healthy(5)
        tokens = api.login_ok(user.username)
        access.authenticate_access(tokens["access"])
        heard.events.clear()
        for _ in range(20):
            publish_forged_revocation(real_redis.client(), tokens["session_id"])
            access.authenticate_access(tokens["access"])
        heard.wait_for(lambda e: e.kind == events.REVOKED, count=20)
        time.sleep(0.2)
        assert len([e for e in heard.events if e.kind == events.REVOKED]) == 20
    finally:
        unsubscribe()


def test_events_a_read_leaves_no_message_in_the_clients_buffer(redis_server):
    """A check trusts its cache when the subscription's socket holds nothing: that is
    sound only if a read never leaves a received message in redis-py's buffer, where a
    poll of the socket cannot see it. Two messages that arrive together are both handed
    over by one read."""
    client = redis_server.client()
    pubsub = client.pubsub()
    try:
        pubsub.subscribe("ev")
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        pipe = client.pipeline(transaction=False)
        pipe.publish("ev", b"first").publish("ev", b"second")
        pipe.execute()
        time.sleep(0.05)  # both in the socket: the first recv takes them together
        receiver = receivers._Receiver()
        handled: list[bytes] = []
        receiver._handle = lambda message: handled.append(message["data"])
        receiver._read_waiting(pubsub)
        assert handled == [b"first", b"second"]
        assert receivers._nothing_to_read(pubsub)
        assert not pubsub.connection.can_read(timeout=0)
    finally:
        pubsub.close()
        client.close()
