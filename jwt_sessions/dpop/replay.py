"""Each proof once: its `jti` is claimed in Redis (SET NX) for as long as the proof could
still be accepted, so a captured proof cannot be sent again, to any process. A proof that
comes with an access token is claimed in the access check's own round trip.

When Redis cannot answer, REDIS_FAILURE_POLICY decides: "deny" refuses (503); under
"database" this process's own memory of recent proofs stands in, so a replay to the same
process is still caught (one to another process is not while Redis is away). The proofs
it let through are claimed in Redis before the process trusts Redis again, so none
passes twice once Redis is back.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from django.utils.translation import gettext_lazy as _

from ..redis import layout, mirror
from ..redis.client import StoreUnavailable
from .errors import InvalidDPoPProof
from .proofs import Proof, Signature
from .settings import dpop_settings

logger = logging.getLogger("jwt_sessions")


@dataclass(frozen=True)
class ProofClaim:
    """A proof's Redis key, how long it must live (until the proof's `iat` is too old to
    pass, plus a second for clocks), and the proof's signature check, which runs while
    Redis answers the claim. A claim made for a proof whose signature then fails is
    dropped again: a forged proof leaves nothing behind."""

    key: str
    ttl: timedelta
    signature: Signature

    @property
    def redis_claim(self) -> tuple[str, timedelta]:
        return self.key, self.ttl

    def spend(self) -> None:
        """Claim it on its own round trip; InvalidDPoPProof if forged or used before."""
        try:
            fresh: bool | None = mirror.claim_once(self.key, self.ttl, self.signature.holds)
        except StoreUnavailable:
            fresh = None
        self.answered(fresh)

    async def aspend(self) -> None:
        """`spend` for async code."""
        try:
            fresh: bool | None = await mirror.aclaim_once(self.key, self.ttl,
                                                          self.signature.holds)
        except StoreUnavailable:
            fresh = None
        await self.aanswered(fresh)

    def answered(self, fresh: bool | None) -> None:
        """Decide on Redis's answer to the claim (True: claimed now; False: claimed
        before; None: no answer): InvalidDPoPProof unless the signature holds and the
        proof is new."""
        if self._forged(fresh):
            _drop(self.key)
        self._settle(fresh)

    async def aanswered(self, fresh: bool | None) -> None:
        """`answered` for async code."""
        if self._forged(fresh):
            await _adrop(self.key)
        self._settle(fresh)

    def _forged(self, fresh: bool | None) -> bool:
        """Whether the claim was made now for a proof whose signature fails."""
        return bool(fresh) and not self.signature.holds()

    def _settle(self, fresh: bool | None) -> None:
        if not self.signature.holds():
            raise InvalidDPoPProof()
        if fresh is None:
            self.spend_locally()
        elif not fresh:
            self.refuse()

    def spend_locally(self) -> None:
        """Redis could not answer: 503 under "deny", else this process's memory."""
        mirror.apply_failure_policy()
        if not mirror.claim_while_down(self.key, self.ttl):
            self.refuse()

    def refuse(self) -> NoReturn:
        logger.info("DPoP proof replayed; refused")
        raise InvalidDPoPProof(_("This DPoP proof was already used."))


def _drop(key: str) -> None:
    """Drop a forged proof's claim (left to expire if Redis cannot answer now)."""
    try:
        mirror.unclaim(key)
    except StoreUnavailable:
        pass


async def _adrop(key: str) -> None:
    try:
        await mirror.aunclaim(key)
    except StoreUnavailable:
        pass


def claim_of(proof: Proof, session_id: uuid.UUID | None = None) -> ProofClaim:
    """The claim that spends `proof`; `session_id` when it comes with that session's
    access token (its key then shares the session's hash tag)."""
    left = proof.iat + dpop_settings().proof_max_age.total_seconds() - time.time()
    return ProofClaim(layout.dpop_proof_key(proof.jkt, proof.jti, session_id),
                      timedelta(seconds=max(left, 0) + 1), proof.signature)
