"""Each proof once: its `jti` is claimed in Redis (SET NX) for as long as the proof could
still be accepted, so a captured proof cannot be sent again, to any process.

When Redis cannot answer, REDIS_FAILURE_POLICY decides: "deny" refuses (503); under
"database" this process's own memory of recent proofs stands in, so a replay to the same
process is still caught (one to another process is not, until Redis is back).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from datetime import timedelta

from django.utils.translation import gettext_lazy as _

from .. import mirror
from ..store import StoreUnavailable, store
from .errors import InvalidDPoPProof
from .proofs import Proof
from .settings import dpop_settings

logger = logging.getLogger("jwt_sessions")
_LOCAL_SIZE = 100_000
_local: OrderedDict[str, float] = OrderedDict()  # key -> when it may be forgotten
_local_lock = threading.Lock()


def _key_and_ttl(proof: Proof) -> tuple[str, timedelta]:
    """The proof's Redis key, and how long it must live: until the proof's `iat` is too
    old to pass (plus a second for clocks)."""
    left = proof.iat + dpop_settings().proof_max_age.total_seconds() - time.time()
    return store.dpop_proof_key(proof.jkt, proof.jti), timedelta(seconds=max(left, 0) + 1)


def _refuse_replay() -> None:
    logger.info("DPoP proof replayed; refused")
    raise InvalidDPoPProof(_("This DPoP proof was already used."))


def _claim_locally(key: str, ttl: timedelta) -> bool:
    now = time.monotonic()
    with _local_lock:
        while _local and (next(iter(_local.values())) <= now or len(_local) > _LOCAL_SIZE):
            _local.popitem(last=False)
        if _local.get(key, 0.0) > now:
            return False
        _local[key] = now + ttl.total_seconds()
        return True


def _without_redis(key: str, ttl: timedelta) -> bool:
    mirror.apply_failure_policy()
    return _claim_locally(key, ttl)


def mark_used(proof: Proof) -> None:
    """Claim the proof; InvalidDPoPProof if it was used before."""
    key, ttl = _key_and_ttl(proof)
    try:
        fresh = mirror.claim_once(key, ttl)
    except StoreUnavailable:
        fresh = _without_redis(key, ttl)
    if not fresh:
        _refuse_replay()


async def amark_used(proof: Proof) -> None:
    """`mark_used` for async code."""
    key, ttl = _key_and_ttl(proof)
    try:
        fresh = await mirror.aclaim_once(key, ttl)
    except StoreUnavailable:
        fresh = _without_redis(key, ttl)
    if not fresh:
        _refuse_replay()
