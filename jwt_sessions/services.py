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
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import FieldDoesNotExist
from django.db import transaction
from django.utils import timezone

from . import local_cache, mirror, signals, stats
from .claims import extra_claims
from .clients import client_info
from .conf import access_token_ttl, cached_per_settings, jwt_settings
from .credentials import binding_of, is_active, is_bound
from .exceptions import (
    InvalidCredentials,
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
from .serializers import TokenPairSerializer
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
    secret_check_matches,
    secret_check_of,
)

logger = logging.getLogger("jwt_sessions")

# A compare-and-swap loses only when another refresh of the same session won; give each
# concurrent caller enough turns to see the winner's state.
_MAX_ROTATION_ATTEMPTS = 32


@dataclass(frozen=True)
class TokenPair:
    """What login and refresh answer."""

    access: str
    refresh: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    session_id: uuid.UUID
    user_id: str

    def as_dict(self) -> dict[str, str]:
        """The JSON body login and refresh answer."""
        return dict(TokenPairSerializer(self).data)


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


def _answer(session: Session, refresh: RefreshToken, now: datetime, user: Any) -> TokenPair:
    """The token pair of a session's current row: its access token is signed from the
    row (user, session end, auth_time, amr), never from what Redis said; `user` (the
    session's) is what CLAIMS_HOOK sees."""
    access, access_expires = encode_access_token(
        session.user_id, session.pk, session.access_jti, now, session.expires_at,
        auth_time=session.auth_time, amr=session.amr, extra=extra_claims(user, session.pk))
    return TokenPair(access, refresh.value, access_expires, session.expires_at, session.pk,
                     str(session.user_id))


@dataclass(frozen=True)
class PreparedSecret:
    """A new session secret whose bcrypt hash is being computed on a worker thread."""

    secret: bytes
    bcrypt: Future[str]


_bcrypt_workers: ThreadPoolExecutor | None = None
_bcrypt_workers_lock = threading.Lock()


def prepare_session_secret() -> PreparedSecret:
    """Start hashing a session secret now, so that a login pays for the password check
    and bcrypt at once rather than one after the other (both release the GIL). A login
    that then fails wastes that bcrypt: the login throttles bound how often."""
    global _bcrypt_workers
    with _bcrypt_workers_lock:
        if _bcrypt_workers is None:
            _bcrypt_workers = ThreadPoolExecutor(max_workers=4,
                                                 thread_name_prefix="jwt_sessions_bcrypt")
    secret = new_session_secret()
    return PreparedSecret(secret, _bcrypt_workers.submit(hash_session_secret, secret))


def issue_tokens(user: Any, request: Any = None, prepared: PreparedSecret | None = None,
                 amr: Iterable[str] = ()) -> TokenPair:
    """Open a session for an authenticated user and return its first token pair.

    The session is bound to the password hash the login checked; if the user's
    credentials moved on meanwhile (a password change, a deactivation racing the
    login), no session is stored. `prepared`: a secret whose bcrypt started earlier.
    `amr` says how the user proved who they are (`["pwd"]` for a password login); it
    and the time of this login (`auth_time`) are the session's until it reauthenticates.
    """
    if isinstance(amr, str):
        raise TypeError("amr is a list of method names, e.g. ['pwd'], not a string")
    if prepared is None:
        secret = new_session_secret()
        secret_bcrypt = hash_session_secret(secret)  # outside the transaction: ~0.25 s CPU
    else:
        secret, secret_bcrypt = prepared.secret, prepared.bcrypt.result()
    now = timezone.now()
    info = client_info(request)
    session_id = uuid.uuid4()
    refresh = make_refresh_token(session_id, secret)
    idle_end, absolute_end = _session_ends(now)
    with transaction.atomic():
        _lock_credentials(user)
        _enforce_session_limit(user)
        session = Session.objects.create(
            id=session_id, user=user, refresh_token_bcrypt=secret_bcrypt,
            secret_check=secret_check_of(secret), auth_binding=binding_of(user.password),
            refresh_token_sha256=refresh.sha256, access_jti=new_jti(),
            user_agent=info.user_agent, browser=info.browser, os=info.os, device=info.device,
            device_type=info.device_type, ip_address=info.ip_address,
            location=locate(info.ip_address), created_at=now, last_activity_at=now,
            auth_time=now, amr=list(amr), expires_at=_capped(idle_end, absolute_end),
            absolute_expires_at=absolute_end)
        mirror.cache_session(session)
    logger.info("Session %s opened for user %s", session_id, user.pk)
    django_request = getattr(request, "_request", request)
    transaction.on_commit(lambda: signals.session_created.send(
        sender=Session, session=session, request=django_request))
    if request is not None:
        user_logged_in.send(sender=user.__class__, request=django_request, user=user)
    return _answer(session, refresh, now, user)


def _lock_credentials(user: Any) -> None:
    """Lock the user's row until the new session is committed, and check that it still
    holds the credentials the login saw: a password change or deactivation that commits
    first is seen here; one that commits later waits for our commit, and then revokes
    the new session like any other."""
    model = type(user)
    fields = ["password"] + (["is_active"] if _has_field(model, "is_active") else [])
    row = (model._default_manager.select_for_update().filter(pk=user.pk).order_by()
           .values(*fields).first())
    if (row is None or row["password"] != user.password
            or row.get("is_active", True) is False or not is_active(user)):
        logger.info("Login of user %s refused: credentials changed meanwhile", user.pk)
        raise InvalidCredentials()


def _has_field(model: Any, name: str) -> bool:
    try:
        return model._meta.get_field(name).concrete
    except FieldDoesNotExist:
        return False


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
@cached_per_settings
def _fallback_slots() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(jwt_settings.MAX_CONCURRENT_DB_FALLBACKS)


@contextmanager
def _fallback_gate() -> Iterator[None]:
    """Bound this process's concurrent database fallbacks (MAX_CONCURRENT_DB_FALLBACKS)
    so that a Redis outage or flush cannot pile every request onto the database: beyond
    the bound, 503. Each holder releases the slots it took, even if the bound changed."""
    slots = _fallback_slots()
    if not slots.acquire(blocking=False):
        logger.warning("Database fallback limit (%d) reached; refusing",
                       jwt_settings.MAX_CONCURRENT_DB_FALLBACKS)
        raise ServiceUnavailable()
    try:
        yield
    finally:
        slots.release()


def authenticate_access(token: str) -> AccessClaims:
    """Verify an access token: the JWT, then this process's LOCAL_CACHE (when on), then
    one Redis lookup; the database on a miss."""
    claims = decode_claims(token)
    cache = local_cache.current()
    if cache is not None and cache.holds(claims.session_id, claims.jti):
        return claims
    since = 0 if cache is None else cache.version()
    counts = stats.take_due()
    try:
        state = mirror.check_access(claims.session_id, claims.jti, counts)
    except StoreUnavailable:
        _store_unavailable(counts)
        state = None
    if not _redis_vouches(claims, state, cache, since):
        _authenticate_from_database(claims, rehydrate=state == MISS)
    return claims


async def aauthenticate_access(token: str) -> AccessClaims:
    """`authenticate_access` for async code: the same steps, none blocking the loop (the
    database fallback runs in a thread, through the same gate)."""
    claims = decode_claims(token)
    cache = local_cache.current()
    if cache is not None and cache.holds(claims.session_id, claims.jti):
        return claims
    since = 0 if cache is None else cache.version()
    counts = stats.take_due()
    try:
        state = await mirror.acheck_access(claims.session_id, claims.jti, counts)
    except StoreUnavailable:
        _store_unavailable(counts)
        state = None
    if not _redis_vouches(claims, state, cache, since):
        await sync_to_async(_authenticate_from_database)(claims, rehydrate=state == MISS)
    return claims


def decode_claims(token: str) -> AccessClaims:
    """The verified claims of an access token, or its 401."""
    try:
        return decode_access_token(token)
    except ExpiredToken as exc:
        raise TokenExpired() from exc
    except InvalidToken as exc:
        raise TokenInvalid() from exc


def _store_unavailable(counts: dict[str, int] | None) -> None:
    """Redis could not answer: keep the counts, then 503 or go on without Redis."""
    stats.give_back(counts)
    mirror.apply_failure_policy()


def _redis_vouches(claims: AccessClaims, state: str | None, cache: local_cache.LocalCache | None,
                   since: int) -> bool:
    """What Redis's answer (None: no answer) decides: True for a live token (kept in the
    LOCAL_CACHE, unless an event since `since` said otherwise), 401 for a revoked
    session, False when the database must decide."""
    if state == HIT:
        stats.record("redis_hits")
        if cache is not None:
            cache.keep(claims.session_id, claims.jti, since)
        return True
    if state == REVOKED:
        stats.record("redis_hits")
        raise SessionRevoked()
    if state == MISS:
        stats.record("redis_misses")
    logger.debug("Session %s: Redis %s; checking the database", claims.session_id,
                 "missed" if state == MISS else "unavailable")
    stats.record("db_fallbacks")
    return False


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
    """The fast path: Redis vouches for the token, so no bcrypt. None: ask the database.

    Redis only says "this is the current token"; the user, the session's limits and
    the credentials binding come from the row, and the compare-and-swap holds the row
    to what Redis claimed. Someone who can write Redis can make this path give up,
    never make it grant more than the row allows.
    """
    idle_end = now + jwt_settings.REFRESH_TOKEN_LIFETIME
    try:
        cached = mirror.rotate(token.session_id, token.sha256, new_refresh.sha256, jti,
                               idle_end - now, access_token_ttl())
    except StoreUnavailable:
        mirror.apply_failure_policy()
        return None
    if cached is None:
        return None
    session = _session_for_refresh(token.session_id)
    installed = SessionKeys(token.session_id, new_refresh.sha256, jti,
                            session.user_id if session else cached.user_id)
    if session is None:
        mirror.uncache(installed)
        return None
    if not _credentials_hold(session):
        mirror.uncache(installed)
        raise SessionRevoked()
    expires_at = _capped(idle_end, session.absolute_expires_at)
    values = _rotation_update(now, new_refresh, jti, expires_at, token.sha256)
    if not _swap(token.session_id, (token.sha256, cached.access_jti), now, values):
        # The database disagrees (revoked, ended, or rotated through a fallback): undo
        # what the script installed and let the database decide.
        mirror.uncache(installed)
        return None
    for name, value in values.items():
        setattr(session, name, value)
    return _answer(session, new_refresh, now, session.user)


def _session_for_refresh(session_id: uuid.UUID) -> Session | None:
    """The row a refresh decides on, with its user (one query): the user's password hash
    and active flag are part of the decision."""
    return Session.objects.select_related("user").filter(pk=session_id).order_by().first()


def _credentials_hold(session: Session) -> bool:
    """The session's user is active and has the password the session was issued under;
    if not, the session is revoked here (and False returned)."""
    user = session.user
    if not is_active(user):
        reason = RevokeReason.USER_DEACTIVATED
    elif not is_bound(session.auth_binding, user.password):
        reason = RevokeReason.PASSWORD_CHANGED
    else:
        return True
    logger.info("Session %s of user %s: credentials changed; revoked (%s)", session.pk,
                session.user_id, reason)
    revoke_sessions(Session.objects.filter(pk=session.pk), reason)
    return False


# A stand-in for a missing row, so an unknown session id costs the same keyed digest as
# a known one: no timing tells whether a session exists.
_NO_SESSION_CHECK = "0" * 64
# Sessions whose secret bcrypt has confirmed in this process: bcrypt runs at most once
# per genuine secret here, not once per database-path refresh.
_bcrypt_confirmed: OrderedDict[tuple[uuid.UUID, str], None] = OrderedDict()
_BCRYPT_CONFIRMED_SIZE = 10_000
_bcrypt_lock = threading.Lock()


def _is_genuine(token: RefreshToken) -> bool:
    """Whether the token carries its session's real secret.

    The keyed check decides first, over one single-column lookup that costs the same
    for a real and an unknown session, so a forged token (a real session id with a
    made-up secret) costs no bcrypt and tells nothing; bcrypt, the protection of the
    stored secret, then confirms a genuine one once. Rows from before secret checks
    existed have only bcrypt.
    """
    row = Session.objects.filter(pk=token.session_id).order_by().values_list(
        "secret_check", "refresh_token_bcrypt").first()
    stored, hashed = row if row is not None else (_NO_SESSION_CHECK, "")
    if row is not None and not stored:
        return check_session_secret(token.secret, hashed)
    if not secret_check_matches(token.secret, stored) or row is None:
        return False
    memo = (token.session_id, stored)
    with _bcrypt_lock:
        if memo in _bcrypt_confirmed:
            _bcrypt_confirmed.move_to_end(memo)
            return True
    if not check_session_secret(token.secret, hashed):
        return False
    with _bcrypt_lock:
        _bcrypt_confirmed[memo] = None
        while len(_bcrypt_confirmed) > _BCRYPT_CONFIRMED_SIZE:
            _bcrypt_confirmed.popitem(last=False)
    return True


def _refresh_from_database(token: RefreshToken, new_refresh: RefreshToken, jti: str,
                           now: datetime) -> TokenPair:
    """The slow path: the row decides, once the token has proved its secret genuine."""
    if not _is_genuine(token):
        raise RefreshTokenInvalid()
    session = _session_for_refresh(token.session_id)
    if session is None:
        raise RefreshTokenInvalid()
    grace = jwt_settings.REFRESH_REUSE_GRACE
    for _attempt in range(_MAX_ROTATION_ATTEMPTS):
        if session.revoked_at is not None:
            raise SessionRevoked()
        if session.expires_at <= now:
            raise RefreshTokenInvalid()
        if not _credentials_hold(session):
            raise SessionRevoked()
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
            return _answer(session, new_refresh, now, session.user)
        session = _session_for_refresh(token.session_id)
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
    secret_bcrypt = hash_session_secret(secret)  # before any row is read: it takes a while
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
    # The password just checked is the one the session is bound to from now on.
    values: dict[str, Any] = {
        "refresh_token_bcrypt": secret_bcrypt, "secret_check": secret_check_of(secret),
        "auth_binding": binding_of(user.password), "refresh_token_sha256": refresh.sha256,
        "access_jti": new_jti(), "previous_refresh_token_sha256": "", "rotated_at": now,
        "last_activity_at": now, "expires_at": expires_at, "auth_time": now,
        "amr": list(amr)}
    if not _swap(session.pk, (session.refresh_token_sha256, session.access_jti), now, values):
        raise TokenInvalid()
    replaced = mirror.keys_of(session)
    for name, value in values.items():
        setattr(session, name, value)
    mirror.cache_verified(session, replaced)
    logger.info("Session %s reauthenticated", session.pk)
    django_request = getattr(request, "_request", request)
    transaction.on_commit(lambda: signals.session_refreshed.send(
        sender=Session, session_id=session.pk, user_id=str(session.user_id),
        request=django_request))
    return _answer(session, refresh, now, user)


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


# ------------------------------------------------------------------ credentials
# On a user object whose save revoked sessions for a password change: their ids, so that
# `update_session_auth` called after that save (Django's order) can keep one of them.
_REVOKED_BY_CHANGE = "_jwt_sessions_revoked_by_password_change"


def revoke_for_password_change(user: Any) -> int:
    """Revoke the user's active sessions that are not bound to its current password hash
    (a session re-bound by `update_session_auth` before the save survives)."""
    stale = Session.objects.active().for_user(user).exclude(
        auth_binding=binding_of(user.password))
    ids = list(stale.values_list("pk", flat=True))
    user.__dict__[_REVOKED_BY_CHANGE] = set(ids)
    return revoke_sessions(Session.objects.filter(pk__in=ids), RevokeReason.PASSWORD_CHANGED)


def rebind_sessions(user: Any, old_password: str) -> int:
    """Move the sessions bound to `old_password` to the user's new hash of the same
    password (Django upgraded the hash at login: not a change of credentials)."""
    return Session.objects.active().for_user(user).filter(
        auth_binding=binding_of(old_password)).update(auth_binding=binding_of(user.password))


def update_session_auth(user: Any, session_id: Any) -> bool:
    """Keep one session alive across a deliberate password change ("change my password,
    stay logged in here"), as Django's `update_session_auth_hash` does.

    Before `user.save()`: the session is re-bound to the new hash and the save spares
    it. After the save (Django's order): the session is restored only if that very save,
    of this very user object, revoked it; any other revoked session stays revoked.
    False when there was no such session.
    """
    pk = _as_session_id(session_id)
    if pk is None:
        return False
    binding = binding_of(user.password)
    if Session.objects.active().filter(pk=pk, user_id=user.pk).update(auth_binding=binding):
        return True
    if pk not in user.__dict__.get(_REVOKED_BY_CHANGE, ()):
        return False
    user.__dict__[_REVOKED_BY_CHANGE].discard(pk)
    with transaction.atomic():
        restored = Session.objects.filter(
            pk=pk, user_id=user.pk, revoked_reason=RevokeReason.PASSWORD_CHANGED,
            expires_at__gt=timezone.now()).update(
            revoked_at=None, revoked_reason="", revoked_by=None, auth_binding=binding)
        session = Session.objects.by_id(pk) if restored else None
    if session is None:
        return False
    mirror.restore(session)
    logger.info("Session %s of user %s kept across a password change", pk, user.pk)
    return True


def forget_user_sessions(user_id: Any) -> None:
    """Drop a deleted user's sessions from Redis before their rows cascade away."""
    mirror.tombstone(mirror.session_keys(Session.objects.active().filter(user_id=user_id)))
