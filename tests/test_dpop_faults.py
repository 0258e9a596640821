"""DPoP-bound requests while Redis fails, with real processes: the proof's claim is written
before its signature is verified and read after, so a link that breaks in between must
leave no pooled connection out of step (a later request reading an earlier one's reply),
and a replay must still be refused once Redis is back.

Each test runs its own redis-server behind a TCP proxy (tests/redis_servers.py)."""
from __future__ import annotations

import pytest

from jwt_sessions.redis.mirror import circuit
from tests.conftest import PROXY_TIMEOUT
from tests.dpop_keys import ProofKey
from tests.test_dpop import WHOAMI, assert_dpop_refusal, bound_login, call
from tests.test_faults import guarded_api, wait_for_retry  # noqa: F401, F811  (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("through_proxy")]
# ruff: noqa: F811  (guarded_api is the fixture imported above)


def test_a_restarted_redis_serves_bound_requests_and_refuses_replays(guarded_api, user,
                                                                    redis_server):
    """Every pooled connection is dead after a restart: the claim is written again on a
    new one (the client's retry), and the replay check works on the empty Redis."""
    key = ProofKey()
    access = bound_login(guarded_api, user, key)["access"]
    for _ in range(3):  # several pooled connections
        assert call(guarded_api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200
    redis_server.stop()
    redis_server.start()
    wait_for_retry()
    proof = key.proof("GET", WHOAMI, token=access)
    assert call(guarded_api, access, proof).status_code == 200
    assert_dpop_refusal(call(guarded_api, access, proof))
    assert call(guarded_api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200


def test_a_reply_lost_to_a_slow_link_is_never_read_by_a_later_request(guarded_api, user,
                                                                       proxy):
    """Redis answers after the client gave up: that late reply must not become the
    answer to the next request on the same connection (a replay taken for fresh, or a
    fresh proof for a replay)."""
    key = ProofKey()
    access = bound_login(guarded_api, user, key)["access"]
    assert call(guarded_api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200
    proxy.latency = PROXY_TIMEOUT * 2
    late = key.proof("GET", WHOAMI, token=access)
    assert call(guarded_api, access, late).status_code == 200  # the database stood in
    proxy.latency = 0.0
    circuit.reset()
    fresh = key.proof("GET", WHOAMI, token=access)
    assert call(guarded_api, access, fresh).status_code == 200
    assert_dpop_refusal(call(guarded_api, access, fresh))
    for _ in range(3):
        assert call(guarded_api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200


def test_a_forged_proof_while_the_link_is_cut_is_refused_and_costs_nothing(guarded_api, user,
                                                                           proxy):
    key = ProofKey()
    access = bound_login(guarded_api, user, key)["access"]
    good, other = key.proof("GET", WHOAMI, token=access), key.proof("GET", WHOAMI)
    proxy.cut("refuse")
    assert_dpop_refusal(call(guarded_api, access,
                             good.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]))
    proxy.restore()
    wait_for_retry()
    assert call(guarded_api, access, good).status_code == 200  # its jti was never spent
