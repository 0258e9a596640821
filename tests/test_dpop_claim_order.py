"""A bound request's proof: its claims checked first, its jti claimed in the access
check's round trip, its signature verified while Redis answers. The claim must reach
Redis, a forged proof must leave no claim behind (nor lift a real proof's), and the
pooled connection must stay in step whatever the work in between does."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from redis import Redis
from redis.connection import AbstractConnection

from jwt_sessions import api as jwt_api
from jwt_sessions.dpop import proofs
from jwt_sessions.dpop.errors import DPoPError
from jwt_sessions.redis import layout
from jwt_sessions.redis.mirror import HIT, MISS, circuit
from jwt_sessions.redis.store import astore, store
from tests.dpop_keys import ProofKey
from tests.test_dpop import WHOAMI, assert_dpop_refusal, bound_login, call

pytestmark = pytest.mark.django_db


@pytest.fixture
def key() -> ProofKey:
    return ProofKey()


def claimed_proofs(redis_conn) -> list[bytes]:
    return [k for k in redis_conn.scan_iter(match="*:p:*")]


def forged(proof: str, other: str) -> str:
    """`proof` with the signature of `other` (same key, other payload): well formed, every
    claim right, but not signed."""
    return proof.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]


def check_async(access: str, proof: str):
    async def run():
        try:
            return await jwt_api.aauthenticate(access, dpop_proof=proof, method="GET",
                                               uri=WHOAMI)
        finally:
            await astore.aclose()

    return asyncio.run(run())


def test_a_bound_request_claims_its_proof_in_its_one_round_trip(api, user, key, redis_conn,
                                                                round_trips, queries):
    access = bound_login(api, user, key)["access"]
    assert call(api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200
    before = set(claimed_proofs(redis_conn))  # Redis knows the script by now
    round_trips[0] = 0
    with queries() as q:
        assert call(api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200
    assert (round_trips[0], len(q.captured_queries)) == (1, 0)
    assert not circuit.is_open()  # Redis answered: no database fallback stood in
    (claim,) = set(claimed_proofs(redis_conn)) - before
    assert 0 < redis_conn.pttl(claim) <= 61_000


def test_the_signature_is_verified_between_writing_the_claim_and_reading_it(
        api, user, key, monkeypatch):
    access = bound_login(api, user, key)["access"]
    seen: list[str] = []
    real_send, real_holds = AbstractConnection.send_packed_command, proofs.Signature.holds
    real_parse = Redis.parse_response

    def send(self, command, check_health=True):
        seen.append("written")
        return real_send(self, command, check_health)

    def holds(self):
        if self._holds is None:
            seen.append("verified")
        return real_holds(self)

    def parse(self, *args, **kwargs):
        seen.append("read")
        return real_parse(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", send)
    monkeypatch.setattr(Redis, "parse_response", parse)
    monkeypatch.setattr(proofs.Signature, "holds", holds)
    assert call(api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200
    assert seen[:3] == ["written", "verified", "read"], seen


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_forged_proof_is_refused_and_leaves_no_claim(api, user, key, redis_conn,
                                                       asynchronous):
    access = bound_login(api, user, key)["access"]
    before = set(claimed_proofs(redis_conn))
    proof = forged(key.proof("GET", WHOAMI, token=access), key.proof("GET", WHOAMI))
    if asynchronous:
        with pytest.raises(DPoPError) as refused:
            check_async(access, proof)
        assert refused.value.default_code == "invalid_dpop_proof"
    else:
        assert_dpop_refusal(call(api, access, proof))
    assert set(claimed_proofs(redis_conn)) == before
    assert call(api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200


def test_a_forged_copy_of_a_spent_proof_leaves_its_claim(api, user, key, redis_conn):
    access = bound_login(api, user, key)["access"]
    proof = key.proof("GET", WHOAMI, token=access)
    assert call(api, access, proof).status_code == 200
    spent = set(claimed_proofs(redis_conn))
    assert_dpop_refusal(call(api, access, forged(proof, key.proof("GET", WHOAMI))))
    assert set(claimed_proofs(redis_conn)) == spent
    assert_dpop_refusal(call(api, access, proof))  # still a replay


def test_a_forged_proof_after_a_local_cache_hit_leaves_no_claim(api, user, key, redis_conn,
                                                               jwt_settings):
    from jwt_sessions.redis import events, local_cache

    jwt_settings(LOCAL_CACHE={"max_age": timedelta(seconds=30), "max_entries": 100})
    cache = local_cache.current()
    try:
        assert cache is not None and events.wait_until_healthy(5)
        access = bound_login(api, user, key)["access"]
        assert call(api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200
        hits, before = cache.hits, set(claimed_proofs(redis_conn))
        assert_dpop_refusal(call(api, access, forged(key.proof("GET", WHOAMI, token=access),
                                                     key.proof("GET", WHOAMI))))
        assert cache.hits == hits + 1  # the session check was the cache's
        assert set(claimed_proofs(redis_conn)) == before
        assert call(api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200
        assert len(set(claimed_proofs(redis_conn)) - before) == 1
    finally:
        events.stop()


def test_a_forged_proof_while_redis_is_down_is_a_401_not_a_503(api, user, key, jwt_settings):
    access = bound_login(api, user, key)["access"]
    jwt_settings(REDIS_FAILURE_POLICY="deny")
    circuit.trip()
    assert_dpop_refusal(call(api, access, forged(key.proof("GET", WHOAMI, token=access),
                                                 key.proof("GET", WHOAMI))))


# ------------------------------------------------------------------ the store
def _claim() -> tuple[str, timedelta]:
    return layout.dpop_proof_key("jkt", uuid.uuid4().hex, uuid.uuid4()), timedelta(seconds=5)


def _run(face: str, method: str, *args, **kwargs):
    if face == "sync":
        return getattr(store, method)(*args, **kwargs)

    async def awaited():
        try:
            return await getattr(astore, method)(*args, **kwargs)
        finally:
            await astore.aclose()

    return asyncio.run(awaited())


@pytest.mark.parametrize("face", ["sync", "async"])
def test_the_work_runs_once_and_the_answer_is_the_trips(face, redis_conn):
    calls: list[int] = []
    claim = _claim()
    state = _run(face, "check_access", uuid.uuid4(), "jti", claim,
                 meanwhile=lambda: calls.append(redis_conn.exists(claim[0])))
    assert (state, calls) == (MISS, [1])  # the claim was written before the work ran
    assert _run(face, "check_access", uuid.uuid4(), "jti", claim) == layout.REPLAYED
    other = _claim()
    assert _run(face, "claim_once", *other, meanwhile=lambda: calls.append(2)) is True
    assert calls == [1, 2]


@pytest.mark.parametrize("face", ["sync", "async"])
def test_work_that_fails_leaves_the_connection_in_step(face, redis_conn):
    """The replies written before the work are read even when it raises: the next
    caller of that pooled connection gets its own reply, not this one's."""
    def fail():
        raise RuntimeError("the work failed")

    async def both():
        try:
            with pytest.raises(RuntimeError):
                await astore.check_access(uuid.uuid4(), "jti", _claim(), meanwhile=fail)
            return await astore.claim_once(*_claim())
        finally:
            await astore.aclose()

    if face == "async":
        assert asyncio.run(both()) is True
        return
    with pytest.raises(RuntimeError):
        store.check_access(uuid.uuid4(), "jti", _claim(), meanwhile=fail)
    assert store.claim_once(*_claim()) is True
    session = uuid.uuid4()
    redis_conn.set(layout.access_key(session, "live"), b"1")
    assert store.check_access(session, "live") == HIT
