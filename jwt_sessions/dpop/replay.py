"""Each proof once: its `jti` is claimed in Redis (SET NX) for as long as the proof could
still be accepted, so a captured proof cannot be sent again, to any process. A proof that
comes with an access token is claimed in the access check's own round trip.

When Redis cannot answer, REDIS_FAILURE_POLICY decides: "deny" refuses (503); under
"database" this process's own memory of recent proofs stands in, so a replay to the same
process is still caught (one to another process is not, until Redis is back).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from django.utils.translation import gettext_lazy as _

from ..redis import layout, mirror
from ..redis.client import StoreUnavailable
from .errors import InvalidDPoPProof
from .proofs import Proof
from .settings import dpop_settings

logger = logging.getLogger("jwt_sessions")
_LOCAL_SIZE = 100_000
_local: OrderedDict[str, float] = OrderedDict()  # key -> when it may be forgotten
_local_lock = threading.Lock()


@dataclass(frozen=True)
class ProofClaim:
    """A verified proof's Redis key, and how long it must live: until the proof's `iat`
    is too old to pass (plus a second for clocks)."""

    key: str
    ttl: timedelta

    @property
    def redis_claim(self) -> tuple[str, timedelta]:
        return self.key, self.ttl

    def spend(self) -> None:
        """Claim it on its own round trip; InvalidDPoPProof if it was used before."""
        try:
            fresh = mirror.claim_once(self.key, self.ttl)
        except StoreUnavailable:
            self.spend_locally()
            return
        if not fresh:
            self.refuse()

    async def aspend(self) -> None:
        """`spend` for async code."""
        try:
            fresh = await mirror.aclaim_once(self.key, self.ttl)
        except StoreUnavailable:
            self.spend_locally()
            return
        if not fresh:
            self.refuse()

    def spend_locally(self) -> None:
        """Redis could not answer: 503 under "deny", else this process's memory."""
        mirror.apply_failure_policy()
        now = time.monotonic()
        with _local_lock:
            while _local and (next(iter(_local.values())) <= now or len(_local) > _LOCAL_SIZE):
                _local.popitem(last=False)
            if _local.get(self.key, 0.0) > now:
                self.refuse()
            _local[self.key] = now + self.ttl.total_seconds()

    def refuse(self) -> NoReturn:
        logger.info("DPoP proof replayed; refused")
        raise InvalidDPoPProof(_("This DPoP proof was already used."))


def claim_of(proof: Proof, session_id: uuid.UUID | None = None) -> ProofClaim:
    """The claim that spends `proof`; `session_id` when it comes with that session's
    access token (its key then shares the session's hash tag)."""
    left = proof.iat + dpop_settings().proof_max_age.total_seconds() - time.time()
    return ProofClaim(layout.dpop_proof_key(proof.jkt, proof.jti, session_id),
                      timedelta(seconds=max(left, 0) + 1))
