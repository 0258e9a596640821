"""The check of every request: an access token's signature, then this process's
LOCAL_CACHE (when on), then one Redis round trip; the database only when Redis cannot
say. Sync and async share every step but the waiting. A DPoP proof checked by the door
(`dpop.doors`) is claimed in that same round trip (or on its own after a LOCAL_CACHE hit)."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from . import counters, metrics
from .conf import jwt_settings
from .exceptions import SessionRevoked, TokenExpired, TokenInvalid
from .fallback import fallback_gate
from .models import Session
from .redis import local_cache, mirror
from .redis.mirror import HIT, MISS, REPLAYED, REVOKED, StoreUnavailable
from .services import credentials_hold
from .tokens import AccessClaims, ExpiredToken, InvalidToken, decode_access_token

if TYPE_CHECKING:
    from .dpop.replay import ProofClaim

logger = logging.getLogger("jwt_sessions")


@dataclass(frozen=True)
class _Check:
    """An access check past its JWT and LOCAL_CACHE steps, waiting for Redis."""

    claims: AccessClaims
    cache: local_cache.LocalCache | None
    since: int  # the cache's version before Redis was asked


def _start(token: str) -> tuple[AccessClaims, _Check | None]:
    """The verified claims, and what is left to do (None: LOCAL_CACHE answered)."""
    claims = decode_claims(token)
    cache = local_cache.current()
    if cache is not None and cache.holds(claims.session_id, claims.jti):
        return claims, None
    since = 0 if cache is None else cache.version()
    return claims, _Check(claims, cache, since)


def _needs_database(check: _Check, state: str | None) -> bool:
    """Decide on Redis's answer (None: Redis could not answer)."""
    if state is None:
        mirror.apply_failure_policy()
    return not _redis_vouches(check.claims, state, check.cache, check.since)


def check_access_token(token: str, proof: ProofClaim | None = None) -> AccessClaims:
    """Verify an access token: the JWT, then this process's LOCAL_CACHE (when on), then
    one Redis lookup; the database on a miss. `proof`: the DPoP proof to claim with it.
    Untimed: for a door that times its whole check, refusals before this one included
    (`metrics.timed_access_check`); everyone else calls `authenticate_access`."""
    claims, check = _start(token)
    if check is None:
        if proof is not None:
            proof.spend()
        return claims
    state: str | None = answered_together(claims) if proof is None else None
    if state is None:
        try:
            state = mirror.check_access(claims.session_id, claims.jti, *_claim_of(proof))
        except StoreUnavailable:
            state = None
    if proof is not None:
        proof.answered(_fresh(state))
    if _needs_database(check, state):
        _authenticate_from_database(claims, rehydrate=state == MISS)
    return claims


async def acheck_access_token(token: str, proof: ProofClaim | None = None) -> AccessClaims:
    """`check_access_token` for async code: the same steps, none blocking the loop (the
    database fallback runs in a thread, through the same gate)."""
    claims, check = _start(token)
    if check is None:
        if proof is not None:
            await proof.aspend()
        return claims
    try:
        state: str | None = await mirror.acheck_access(claims.session_id, claims.jti,
                                                       *_claim_of(proof))
    except StoreUnavailable:
        state = None
    if proof is not None:
        await proof.aanswered(_fresh(state))
    if _needs_database(check, state):
        await sync_to_async(_authenticate_from_database)(claims, rehydrate=state == MISS)
    return claims


authenticate_access = metrics.timed_access_check(check_access_token)
aauthenticate_access = metrics.timed_access_check(acheck_access_token)


def _claim_of(proof: ProofClaim | None) -> tuple[Any, Any]:
    """What the access check's round trip claims for `proof`, and the proof's signature
    check, which runs while Redis answers (none without a proof)."""
    return (None, None) if proof is None else (proof.redis_claim, proof.signature.holds)


def _fresh(state: str | None) -> bool | None:
    """Whether the access check's round trip claimed the proof (None: no answer)."""
    return None if state is None else state != REPLAYED


# Redis's answers for access tokens checked together (`checked_together`), this request's.
_answers: ContextVar[dict[tuple[Any, str], str] | None] = ContextVar(
    "jwt_sessions_answers", default=None)


@contextmanager
def checked_together(tokens: list[str]) -> Iterator[None]:
    """Ask Redis about several access tokens in one round trip; `authenticate_access` of
    any of them inside the block takes that answer instead of asking again (a gateway's
    introspection checks its own token and the one it asks about). Tokens that do not
    verify, and a Redis that cannot answer, are left to the ordinary check."""
    pairs = []
    for token in tokens:
        try:
            claims = decode_access_token(token)
        except InvalidToken:
            continue
        pairs.append((claims.session_id, claims.jti))
    try:
        states = mirror.check_accesses(pairs) if len(pairs) > 1 else []
    except StoreUnavailable:
        states = []
    reset = _answers.set(dict(zip(pairs, states, strict=False)) if states else None)
    try:
        yield
    finally:
        _answers.reset(reset)


def answered_together(claims: AccessClaims) -> str | None:
    """Redis's answer for these claims from `checked_together` (once), else None."""
    answers = _answers.get()
    return None if answers is None else answers.pop((claims.session_id, claims.jti), None)


def decode_claims(token: str) -> AccessClaims:
    """The verified claims of an access token, or its 401."""
    try:
        return decode_access_token(token)
    except ExpiredToken as exc:
        raise TokenExpired() from exc
    except InvalidToken as exc:
        raise TokenInvalid() from exc


def _redis_vouches(claims: AccessClaims, state: str | None, cache: local_cache.LocalCache | None,
                   since: int) -> bool:
    """What Redis's answer (None: no answer) decides: True for a live token (kept in the
    LOCAL_CACHE, unless an event since `since` said otherwise), 401 for a revoked
    session, False when the database must decide."""
    if state == HIT:
        counters.record("redis_hits")
        if cache is not None:
            cache.keep(claims.session_id, claims.jti, since)
        return True
    if state == REVOKED:
        counters.record("redis_hits")
        raise SessionRevoked()
    if state == MISS:
        counters.record("redis_misses")
    logger.debug("Session %s: Redis %s; checking the database", claims.session_id,
                 "missed" if state == MISS else "unavailable")
    counters.record("db_fallbacks")
    return False


def _authenticate_from_database(claims: AccessClaims, rehydrate: bool) -> None:
    with fallback_gate():
        session = Session.objects.select_related("user").by_id(claims.session_id)
        now = timezone.now()
        if session is None or session.revoked_at is not None or session.expires_at <= now:
            raise SessionRevoked()
        if str(session.user_id) != claims.user_id or session.access_jti != claims.jti:
            raise TokenInvalid()
        if not credentials_hold(session):  # the user came with the row: no extra query
            raise SessionRevoked()
        if rehydrate:
            mirror.cache_verified(session)
        if now - session.last_activity_at >= jwt_settings.LAST_ACTIVITY_RESOLUTION:
            Session.objects.filter(pk=session.pk).update(last_activity_at=now)
