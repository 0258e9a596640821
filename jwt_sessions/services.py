"""The flows: issue, authenticate, refresh, revoke. The one place that keeps the database
and Redis in step.

The database is the truth; Redis is a cache that may vouch for a token (so an ordinary
request needs no SQL and an ordinary refresh no bcrypt) but never overrides the database:
every rotation is a compare-and-swap on the session row, so a revoked session can never
be refreshed, and at most one refresh token of a session is live at any moment.
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.utils import timezone

from . import mirror, signals, stats
from .claims import extra_claims, extra_claims_for_id
from .clients import client_info
from .conf import access_token_ttl, jwt_settings
from .exceptions import (
    RefreshTokenInvalid,
    RefreshTokenReused,
    ServiceUnavailable,
    SessionRevoked,
    TokenExpired,
    TokenInvalid,
)
from .geoip import locate
from .mirror import HIT, MISS, REVOKED, SessionKeys, StoreUnavailable
from .models import RevokeReason, Session
from .tokens import (
    AccessClaims,
    ExpiredToken,
    InvalidToken,
    RefreshToken,
    check_session_secret,
    decode_access_token,
    encode_access_token,
    hash_session_secret,
    make_refresh_token,
    new_jti,
    new_session_secret,
    parse_refresh_token,
)

logger = logging.getLogger("jwt_sessions")

# A compare-and-swap loses only when another refresh of the same session won; give each
# concurrent caller enough turns to see the winner's state.
_MAX_ROTATION_ATTEMPTS = 32


@dataclass(frozen=True)
class TokenPair:
    """What login and refresh answer (SPEC §5)."""

    access: str
    refresh: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    session_id: uuid.UUID
    user_id: str

    def as_dict(self) -> dict[str, str]:
        return {
            "access": self.access,
            "refresh": self.refresh,
            "access_expires_at": self.access_expires_at.isoformat(),
            "refresh_expires_at": self.refresh_expires_at.isoformat(),
            "session_id": str(self.session_id),
        }


# How the user proved who they are (RFC 8176 method names), for the `amr` claim.
AMR_PASSWORD = "pwd"


# ------------------------------------------------------------------ issue
def _session_ends(now: datetime) -> tuple[datetime, datetime | None]:
    """(idle expiry, absolute end) of a session that starts or refreshes at `now`."""
    max_lifetime = jwt_settings.SESSION_MAX_LIFETIME
    # Whole seconds: Redis keeps the absolute end as an epoch, and both paths must agree.
    absolute = (now + max_lifetime).replace(microsecond=0) if max_lifetime else None
    return now + jwt_settings.REFRESH_TOKEN_LIFETIME, absolute


def _capped(idle_end: datetime, absolute_end: datetime | None) -> datetime:
    return idle_end if absolute_end is None else min(idle_end, absolute_end)


def issue_tokens(user: Any, request: Any = None, amr: Iterable[str] = ()) -> TokenPair:
    """Open a session for an authenticated user and return its first token pair.

    `amr` says how the user proved who they are (`["pwd"]` for a password login); it
    and the time of this login (`auth_time`) are the session's until it reauthenticates.
    """
    if isinstance(amr, str):
        raise TypeError("amr is a list of method names, e.g. ['pwd'], not a string")
    now = timezone.now()
    info = client_info(request)
    secret = new_session_secret()
    session_id = uuid.uuid4()
    refresh = make_refresh_token(session_id, secret)
    idle_end, absolute_end = _session_ends(now)
    with transaction.atomic():
        _enforce_session_limit(user)
        session = Session.objects.create(
            id=session_id, user=user, **_stored_secret(secret),
            refresh_token_sha256=refresh.sha256, access_jti=new_jti(),
            user_agent=info.user_agent, browser=info.browser, os=info.os, device=info.device,
            device_type=info.device_type, ip_address=info.ip_address,
            location=locate(info.ip_address), created_at=now, last_activity_at=now,
            auth_time=now, amr=list(amr),
            expires_at=_capped(idle_end, absolute_end), absolute_expires_at=absolute_end)
        mirror.cache_session(session)
    access, access_expires = encode_access_token(
        user.pk, session_id, session.access_jti, now, session.expires_at,
        auth_time=session.auth_time, amr=session.amr, extra=extra_claims(user, session_id))
    logger.info("Session %s opened for user %s", session_id, user.pk)
    django_request = getattr(request, "_request", request)
    transaction.on_commit(lambda: signals.session_created.send(
        sender=Session, session=session, request=django_request))
    if request is not None:
        user_logged_in.send(sender=user.__class__, request=django_request, user=user)
    return TokenPair(access, refresh.value, access_expires, session.expires_at, session_id,
                     str(user.pk))


def _stored_secret(secret: bytes) -> dict[str, str]:
    """What a session row keeps of a new session secret (login, reauthentication): its
    bcrypt hash, and the keyed check that tells a forged refresh token from a genuine one
    without bcrypt (empty: bcrypt alone decides)."""
    return {"refresh_token_bcrypt": hash_session_secret(secret), "secret_check": ""}


def _enforce_session_limit(user: Any) -> None:
    """With MAX_SESSIONS_PER_USER reached, the new login wins over the least recently
    active sessions."""
    limit = jwt_settings.MAX_SESSIONS_PER_USER
    if not limit:
        return
    active = Session.objects.active().for_user(user).order_by("last_activity_at", "created_at")
    surplus = active.count() - limit + 1
    if surplus > 0:
        oldest = list(active.values_list("pk", flat=True)[:surplus])
        revoke_sessions(Session.objects.filter(pk__in=oldest), RevokeReason.MAX_SESSIONS)


# ------------------------------------------------------------------ authenticate
@contextmanager
def _fallback_gate() -> Iterator[None]:
    """Bound this process's concurrent database fallbacks (MAX_CONCURRENT_DB_FALLBACKS)
    so that a Redis outage or flush cannot pile every request onto the database: beyond
    the bound, 503. Each holder releases the slots it took, even if the bound changed."""
    slots = jwt_settings.derived("db_fallback_slots", lambda: threading.BoundedSemaphore(
        jwt_settings.MAX_CONCURRENT_DB_FALLBACKS))
    if not slots.acquire(blocking=False):
        logger.warning("Database fallback limit (%d) reached; refusing",
                       jwt_settings.MAX_CONCURRENT_DB_FALLBACKS)
        raise ServiceUnavailable()
    try:
        yield
    finally:
        slots.release()


def authenticate_access(token: str) -> AccessClaims:
    """Verify an access token: the JWT, then one Redis lookup; the database on a miss."""
    try:
        claims = decode_access_token(token)
    except ExpiredToken as exc:
        raise TokenExpired() from exc
    except InvalidToken as exc:
        raise TokenInvalid() from exc
    counts = stats.take_due()
    try:
        state = mirror.check_access(claims.session_id, claims.jti, counts)
    except StoreUnavailable:
        stats.give_back(counts)
        mirror.apply_failure_policy()
        state = None
    if state == HIT:
        stats.record("redis_hits")
        return claims
    if state == REVOKED:
        stats.record("redis_hits")
        raise SessionRevoked()
    if state == MISS:
        stats.record("redis_misses")
    logger.debug("Session %s: Redis %s; checking the database", claims.session_id,
                 "missed" if state == MISS else "unavailable")
    stats.record("db_fallbacks")
    _authenticate_from_database(claims, rehydrate=state == MISS)
    return claims


def _authenticate_from_database(claims: AccessClaims, rehydrate: bool) -> None:
    with _fallback_gate():
        session = Session.objects.by_id(claims.session_id)
        now = timezone.now()
        if session is None or session.revoked_at is not None or session.expires_at <= now:
            raise SessionRevoked()
        if str(session.user_id) != claims.user_id or session.access_jti != claims.jti:
            raise TokenInvalid()
        if rehydrate:
            mirror.cache_verified(session)
        if now - session.last_activity_at >= jwt_settings.LAST_ACTIVITY_RESOLUTION:
            Session.objects.filter(pk=session.pk).update(last_activity_at=now)


# ------------------------------------------------------------------ refresh
def refresh_tokens(raw_token: Any, request: Any = None) -> TokenPair:
    """Exchange a refresh token for a new pair (rotating it unless configured not to)."""
    token = parse_refresh_token(raw_token)
    if token is None:
        raise RefreshTokenInvalid()
    now = timezone.now()
    pair = _refresh_via_redis(token, *_next_pair(token), now)
    if pair is None:
        # A fresh pair, never the one the fast path tried: another refresh's script may
        # already have chained from (and deleted) that pair's keys in Redis.
        with _fallback_gate():
            pair = _refresh_from_database(token, *_next_pair(token), now)
    stats.record("refreshes")
    django_request = getattr(request, "_request", request)
    transaction.on_commit(lambda: signals.session_refreshed.send(
        sender=Session, session_id=pair.session_id, user_id=pair.user_id,
        request=django_request))
    logger.info("Session %s refreshed", token.session_id)
    return pair


def _next_pair(token: RefreshToken) -> tuple[RefreshToken, str]:
    """(refresh token, access jti) a refresh would hand out: the refresh token rotates
    unless ROTATE_REFRESH_TOKENS is off; the jti is always new."""
    rotate = jwt_settings.ROTATE_REFRESH_TOKENS
    refresh = make_refresh_token(token.session_id, token.secret) if rotate else token
    return refresh, new_jti()


def _rotation_update(now: datetime, new_refresh: RefreshToken, jti: str,
                     expires_at: datetime, presented: str | None) -> dict[str, Any]:
    """Field values of a rotation; `presented` is None for a grace retry, which keeps the
    previous token and its rotation time (so retries cannot stretch the grace)."""
    values: dict[str, Any] = {"refresh_token_sha256": new_refresh.sha256, "access_jti": jti,
                              "last_activity_at": now, "expires_at": expires_at}
    if presented is not None and presented != new_refresh.sha256:
        values.update(previous_refresh_token_sha256=presented, rotated_at=now)
    return values


def _swap(session_id: uuid.UUID, current: tuple[str, str], now: datetime,
          values: dict[str, Any]) -> bool:
    """Compare-and-swap on the row: wins only if the pair `current` (refresh SHA-256,
    access jti) is still the session's and the session alive. This, not Redis, is what
    makes a rotation happen once. The jti is compared too because without rotation
    (ROTATE_REFRESH_TOKENS=False) the refresh token alone never changes."""
    sha, jti = current
    return bool(Session.objects.filter(
        pk=session_id, refresh_token_sha256=sha, access_jti=jti, revoked_at__isnull=True,
        expires_at__gt=now).update(**values))


def _refresh_via_redis(token: RefreshToken, new_refresh: RefreshToken, jti: str,
                       now: datetime) -> TokenPair | None:
    """The fast path: Redis vouches for the token, so no bcrypt. None: ask the database."""
    idle_end = now + jwt_settings.REFRESH_TOKEN_LIFETIME
    try:
        cached = mirror.rotate(token.session_id, token.sha256, new_refresh.sha256,
                            jti, idle_end - now, access_token_ttl())
    except StoreUnavailable:
        mirror.apply_failure_policy()
        return None
    if cached is None:
        return None
    absolute = (None if cached.absolute_end is None
                else datetime.fromtimestamp(cached.absolute_end, tz=dt_timezone.utc))
    expires_at = _capped(idle_end, absolute)
    values = _rotation_update(now, new_refresh, jti, expires_at, token.sha256)
    # The row's auth_time and amr, read before the swap that holds the row to them (this
    # query folds into this path's read of the row).
    authenticated = Session.objects.filter(pk=token.session_id).values_list(
        "auth_time", "amr").first()
    if authenticated is None or not _swap(token.session_id, (token.sha256, cached.access_jti),
                                          now, values):
        # The database disagrees (revoked, ended, or rotated through a fallback): undo
        # what the script installed and let the database decide.
        mirror.uncache(SessionKeys(token.session_id, new_refresh.sha256, jti,
                                    cached.user_id))
        return None
    access, access_expires = encode_access_token(
        cached.user_id, token.session_id, jti, now, expires_at, auth_time=authenticated[0],
        amr=authenticated[1], extra=extra_claims_for_id(cached.user_id, token.session_id))
    return TokenPair(access, new_refresh.value, access_expires, expires_at, token.session_id,
                     cached.user_id)


def _refresh_from_database(token: RefreshToken, new_refresh: RefreshToken, jti: str,
                           now: datetime) -> TokenPair:
    """The slow path: the row decides, after bcrypt has checked the session secret."""
    session = Session.objects.by_id(token.session_id)
    if session is None or not check_session_secret(token.secret, session.refresh_token_bcrypt):
        raise RefreshTokenInvalid()
    grace = jwt_settings.REFRESH_REUSE_GRACE
    for _attempt in range(_MAX_ROTATION_ATTEMPTS):
        if session.revoked_at is not None:
            raise SessionRevoked()
        if session.expires_at <= now:
            raise RefreshTokenInvalid()
        if token.sha256 == session.refresh_token_sha256:
            presented: str | None = token.sha256
        elif (token.sha256 == session.previous_refresh_token_sha256 and grace
              and session.rotated_at is not None and now - session.rotated_at <= grace):
            presented = None  # a client retry within the grace: supersede the newer pair
        else:
            _reuse_detected(session)
        idle_end = now + jwt_settings.REFRESH_TOKEN_LIFETIME
        expires_at = _capped(idle_end, session.absolute_expires_at)
        values = _rotation_update(now, new_refresh, jti, expires_at, presented)
        if _swap(session.pk, (session.refresh_token_sha256, session.access_jti), now,
                 values):
            replaced = mirror.keys_of(session)
            for name, value in values.items():
                setattr(session, name, value)
            mirror.cache_verified(session, replaced)
            stats.record("db_fallbacks")
            access, access_expires = encode_access_token(
                session.user_id, session.pk, jti, now, expires_at,
                auth_time=session.auth_time, amr=session.amr,
                extra=extra_claims_for_id(session.user_id, session.pk))
            return TokenPair(access, new_refresh.value, access_expires, expires_at, session.pk,
                             str(session.user_id))
        session = Session.objects.by_id(token.session_id)
        if session is None:
            raise RefreshTokenInvalid()
    raise RefreshTokenInvalid()


def _reuse_detected(session: Session) -> None:
    """A superseded refresh token came back: one of its holders is a thief. End the
    session for both."""
    logger.warning("Refresh token reuse detected; session %s of user %s revoked",
                   session.pk, session.user_id)
    stats.record("reuse_detected")
    revoke_sessions(Session.objects.filter(pk=session.pk), RevokeReason.REUSE_DETECTED)
    transaction.on_commit(lambda: signals.refresh_token_reused.send(
        sender=Session, session_id=session.pk, user_id=session.user_id))
    raise RefreshTokenReused()


# ------------------------------------------------------------------ reauthenticate
def reauthenticate(claims: AccessClaims, user: Any, amr: Iterable[str] = (AMR_PASSWORD,),
                   request: Any = None) -> TokenPair:
    """A new pair for the session of `claims`, whose `user` has just proved who they are
    again (the caller checked the password): `auth_time` becomes now, and the previous
    pair dies.

    The server never holds the session secret, so the session gets a new one (new
    bcrypt hash); the compare-and-swap holds the row to the pair `claims` belongs to, so
    a concurrent refresh or revocation wins over this and the answer is a 401.
    """
    secret = new_session_secret()
    stored = _stored_secret(secret)  # bcrypt before any row is read: it takes a while
    now = timezone.now()
    session = Session.objects.by_id(claims.session_id)
    if session is None or session.revoked_at is not None or session.expires_at <= now:
        raise SessionRevoked()
    if (str(session.user_id) != claims.user_id or str(user.pk) != claims.user_id
            or session.access_jti != claims.jti):
        raise TokenInvalid()
    refresh = make_refresh_token(session.pk, secret)
    expires_at = _capped(now + jwt_settings.REFRESH_TOKEN_LIFETIME, session.absolute_expires_at)
    # No previous token: the old one carries the old secret, so no retry of it can pass.
    values: dict[str, Any] = {
        **stored, "refresh_token_sha256": refresh.sha256, "access_jti": new_jti(),
        "previous_refresh_token_sha256": "", "rotated_at": now, "last_activity_at": now,
        "expires_at": expires_at, "auth_time": now, "amr": list(amr)}
    if not _swap(session.pk, (session.refresh_token_sha256, session.access_jti), now, values):
        raise TokenInvalid()
    replaced = mirror.keys_of(session)
    for name, value in values.items():
        setattr(session, name, value)
    mirror.cache_verified(session, replaced)
    access, access_expires = encode_access_token(
        session.user_id, session.pk, session.access_jti, now, expires_at, auth_time=now,
        amr=session.amr, extra=extra_claims(user, session.pk))
    logger.info("Session %s reauthenticated", session.pk)
    django_request = getattr(request, "_request", request)
    transaction.on_commit(lambda: signals.session_refreshed.send(
        sender=Session, session_id=session.pk, user_id=str(session.user_id),
        request=django_request))
    return TokenPair(access, refresh.value, access_expires, expires_at, session.pk,
                     str(session.user_id))


# ------------------------------------------------------------------ revoke
def revoke_sessions(queryset: Any, reason: str, batch_size: int = 1000,
                    revoked_by: Any = None) -> int:
    """Revoke the live sessions of a queryset: database first, then Redis, in batches.

    Each batch is one UPDATE and one pipelined Redis round trip, whatever its size.
    `revoked_by` (a user) records who did it, for revocations made in the admin.
    """
    revoked: list[SessionKeys] = []
    ids = list(queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True))
    now = timezone.now()
    for start in range(0, len(ids), batch_size):
        batch = ids[start:start + batch_size]
        with transaction.atomic():
            # Write first, then read back what this UPDATE revoked: the write lock comes
            # before any read (no lock upgrade to deadlock on, SQLite included), and no
            # refresh can move a revoked row (its compare-and-swap needs revoked_at NULL).
            Session.objects.filter(pk__in=batch, revoked_at__isnull=True).update(
                revoked_at=now, revoked_reason=reason, revoked_by=revoked_by)
            keys = mirror.session_keys(Session.objects.filter(
                pk__in=batch, revoked_at=now, revoked_reason=reason))
        mirror.tombstone(keys)
        revoked.extend(keys)
    if revoked:
        logger.info("%d session(s) revoked (reason: %s)", len(revoked), reason)
        if signals.session_revoked.has_listeners(Session):
            sessions = [_revoked_session(keys, now, reason, revoked_by) for keys in revoked]
            transaction.on_commit(lambda: _send_revoked(sessions, reason))
    return len(revoked)


def _revoked_session(keys: SessionKeys, now: datetime, reason: str,
                     revoked_by: Any) -> Session:
    """A Session for `session_revoked`: what the revocation knows is set, the rest loads
    from the database on first access (Django's deferred fields)."""
    known = {"id": keys.session_id, "user_id": keys.user_id, "revoked_at": now,
             "revoked_reason": reason,
             "revoked_by_id": getattr(revoked_by, "pk", revoked_by)}
    fields = [f.attname for f in Session._meta.concrete_fields if f.attname in known]
    session = Session.from_db(None, fields, [known[name] for name in fields])
    if hasattr(revoked_by, "pk"):
        session.revoked_by = revoked_by
    return session


def _send_revoked(sessions: Iterable[Session], reason: str) -> None:
    for session in sessions:
        signals.session_revoked.send(sender=Session, session=session, reason=reason)


def _as_session_id(value: Any) -> uuid.UUID | None:
    """A session id from a UUID or its text; None for anything malformed."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def revoke_session(session_id: Any, reason: str = RevokeReason.API) -> bool:
    """Revoke one session by id; False if it is unknown or no longer active."""
    pk = _as_session_id(session_id)
    if pk is None:
        return False
    return revoke_sessions(Session.objects.filter(pk=pk), reason) == 1


def revoke_by_refresh_token(raw_token: Any, reason: str = RevokeReason.LOGOUT) -> None:
    """Revoke the session whose current refresh token this is (logout by cookie).

    Only the current token counts: a forged or superseded one raises
    RefreshTokenInvalid, so knowing a session id is not enough to end a session.
    Revoking an already revoked session is a no-op.
    """
    token = parse_refresh_token(raw_token)
    sessions = Session.objects.filter(pk=token.session_id,
                                      refresh_token_sha256=token.sha256) if token else None
    if sessions is None or not sessions.exists():
        raise RefreshTokenInvalid()
    revoke_sessions(sessions, reason)


def revoke_user_sessions(user: Any, reason: str = RevokeReason.API,
                         keep_session_id: Any = None) -> int:
    """Revoke every active session of a user, optionally keeping one (a malformed id
    names no session, so nothing is kept)."""
    sessions = Session.objects.active().for_user(user)
    keep = None if keep_session_id is None else _as_session_id(keep_session_id)
    if keep is not None:
        sessions = sessions.exclude(pk=keep)
    return revoke_sessions(sessions, reason)


def forget_user_sessions(user_id: Any) -> None:
    """Drop a deleted user's sessions from Redis before their rows cascade away."""
    mirror.tombstone(mirror.session_keys(Session.objects.active().filter(user_id=user_id)))
