"""Rotation: a refresh token exchanged for a new pair (Redis vouching, so no bcrypt; or
the database deciding, after the secret proved genuine), and reauthentication, which
gives the session a new secret. Every rotation is a compare-and-swap on the row: the
user, the limits and the credentials binding come from the row, never from Redis."""
from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from . import signals, stats
from .claims import extra_claims
from .conf import jwt_settings
from .crypto import (
    below_configured_cost,
    binding_of,
    check_session_secret,
    hash_new_session_secret,
    hash_session_secret,
    new_session_secret,
    secret_check_matches,
    secret_check_of,
)
from .dpop.doors import binding_after_refresh
from .dpop.errors import DPoPError
from .exceptions import (
    ClaimsHookFailed,
    RefreshTokenInvalid,
    RefreshTokenReused,
    SessionRevoked,
    TokenInvalid,
)
from .fallback import fallback_gate
from .lifetimes import access_token_ttl
from .models import RevokeReason, Session
from .pairs import AMR_PASSWORD, TokenPair, capped_end, token_pair
from .redis import mirror
from .redis.mirror import SessionKeys, StoreUnavailable
from .services import credentials_hold, revoke_sessions
from .tokens import AccessClaims, RefreshToken, make_refresh_token, new_jti, parse_refresh_token

logger = logging.getLogger("jwt_sessions")

# A compare-and-swap loses only when another refresh of the same session won; give each
# concurrent caller enough turns to see the winner's state.
_MAX_ROTATION_ATTEMPTS = 32


def refresh_tokens(raw_token: Any, request: Any = None, dpop_jkt: str = "") -> TokenPair:
    """Exchange a refresh token for a new pair (rotating it unless configured not to).
    `dpop_jkt`: the DPoP key the request proved it holds ("": none), which a bound
    session needs and binds a bearer one."""
    token = parse_refresh_token(raw_token)
    if token is None:
        raise RefreshTokenInvalid()
    now = timezone.now()
    pair = _refresh_via_redis(token, *_next_pair(token), now, dpop_jkt)
    if pair is None:
        # A fresh pair, never the one the fast path tried: another refresh's script may
        # already have chained from (and deleted) that pair's keys in Redis.
        with fallback_gate():
            pair = _refresh_from_database(token, *_next_pair(token), now, dpop_jkt)
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
                       now: datetime, dpop_jkt: str) -> TokenPair | None:
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
    if not credentials_hold(session):
        mirror.uncache(installed)
        raise SessionRevoked()
    try:
        binding = _binding(session, token, dpop_jkt)
        extra = extra_claims(session.user, session.pk)
    except (DPoPError, ClaimsHookFailed):
        mirror.uncache(installed)  # the row stays as it was: so must Redis
        raise
    expires_at = capped_end(idle_end, session.absolute_expires_at)
    values = {**_rotation_update(now, new_refresh, jti, expires_at, token.sha256),
              **binding}
    if not _swap(token.session_id, (token.sha256, cached.access_jti), now, values):
        # The database disagrees (revoked, ended, or rotated through a fallback): undo
        # what the script installed and let the database decide.
        mirror.uncache(installed)
        return None
    for name, value in values.items():
        setattr(session, name, value)
    return token_pair(session, new_refresh, now, extra)


def _session_for_refresh(session_id: uuid.UUID) -> Session | None:
    """The row a refresh decides on, with its user (one query): the user's password hash
    and active flag are part of the decision. A slice, not `first()`, which would order
    the single row by its key."""
    rows = Session.objects.select_related("user").filter(pk=session_id).order_by()[:1]
    return next(iter(rows), None)


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
    stored secret, then confirms a genuine one once per process (and the first such
    refresh raises a login's cheaper hash to BCRYPT_ROUNDS). Rows from before secret
    checks existed have only bcrypt.
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
    if below_configured_cost(hashed):
        _raise_bcrypt_cost(token, hashed)
    with _bcrypt_lock:
        _bcrypt_confirmed[memo] = None
        while len(_bcrypt_confirmed) > _BCRYPT_CONFIRMED_SIZE:
            _bcrypt_confirmed.popitem(last=False)
    return True


def _raise_bcrypt_cost(token: RefreshToken, hashed: str) -> None:
    """Rehash at BCRYPT_ROUNDS the secret a login hashed at its lower cost, now that
    bcrypt has confirmed it (only while the row still holds that hash)."""
    Session.objects.filter(pk=token.session_id, refresh_token_bcrypt=hashed).update(
        refresh_token_bcrypt=hash_session_secret(token.secret))


def _refresh_from_database(token: RefreshToken, new_refresh: RefreshToken, jti: str,
                           now: datetime, dpop_jkt: str) -> TokenPair:
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
        if not credentials_hold(session):
            raise SessionRevoked()
        current = token.sha256 == session.refresh_token_sha256
        retry = (not current and token.sha256 == session.previous_refresh_token_sha256
                 and grace and session.rotated_at is not None
                 and now - session.rotated_at <= grace)
        if _bearer_token_back(session, token, retry, dpop_jkt):
            _reuse_detected(session)
        if retry:  # a client retry within the grace: supersede the newer pair
            presented: str | None = None
            binding = _retry_binding(session, dpop_jkt)
        elif current:
            presented, binding = token.sha256, _binding(session, token, dpop_jkt)
        else:
            # Before reuse detection: a bound-era token sent without its session's key
            # proves nothing, so it neither refreshes nor ends the session.
            binding_after_refresh(session.dpop_jkt, dpop_jkt)
            _reuse_detected(session)
        idle_end = now + jwt_settings.REFRESH_TOKEN_LIFETIME
        expires_at = capped_end(idle_end, session.absolute_expires_at)
        values = {**_rotation_update(now, new_refresh, jti, expires_at, presented),
                  **binding}
        extra = extra_claims(session.user, session.pk)
        if _swap(session.pk, (session.refresh_token_sha256, session.access_jti), now,
                 values):
            replaced = mirror.keys_of(session)
            for name, value in values.items():
                setattr(session, name, value)
            mirror.cache_verified(session, replaced)
            stats.record("db_fallbacks")
            return token_pair(session, new_refresh, now, extra)
        session = _session_for_refresh(token.session_id)
        if session is None:
            raise RefreshTokenInvalid()
    raise RefreshTokenInvalid()


def _binding(session: Session, token: RefreshToken, dpop_jkt: str) -> dict[str, str]:
    """The binding fields after a refresh of the session's current token: a bound
    session needs its key; a bearer session shown a key becomes bound to it, and the
    token it leaves behind is remembered as its last bearer token."""
    bound = binding_after_refresh(session.dpop_jkt, dpop_jkt)
    if bound and not session.dpop_jkt:
        return {"dpop_jkt": bound, "bearer_refresh_token_sha256": token.sha256}
    return {"dpop_jkt": bound}


def _retry_binding(session: Session, dpop_jkt: str) -> dict[str, str]:
    """A retry within the grace changes no binding: a bound session's needs its key, a
    bearer session's stays bearer (whoever retries, a key of theirs binds nothing)."""
    if session.dpop_jkt:
        return {"dpop_jkt": binding_after_refresh(session.dpop_jkt, dpop_jkt)}
    return {"dpop_jkt": ""}


def _bearer_token_back(session: Session, token: RefreshToken, retry: bool,
                       dpop_jkt: str) -> bool:
    """Whether the last bearer token of a session since bound to a key came back from
    anyone but the binding client retrying with that key: the client that had it and
    the one that bound the session cannot both be genuine (a thief who refreshed a
    stolen bearer token with their own key would otherwise lock the client out)."""
    return (bool(session.dpop_jkt) and token.sha256 == session.bearer_refresh_token_sha256
            and not (retry and constant_time_compare(dpop_jkt, session.dpop_jkt)))


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

    The server never holds the session secret, so the session gets a new one (hashed
    at a login's bcrypt cost, raised by the next refresh the database decides); the
    compare-and-swap holds the row to the pair `claims` belongs to, so a concurrent
    refresh or revocation wins over this and the answer is a 401.
    """
    secret = new_session_secret()
    now = timezone.now()
    session = Session.objects.by_id(claims.session_id)
    if session is None or session.revoked_at is not None or session.expires_at <= now:
        raise SessionRevoked()
    if (str(session.user_id) != claims.user_id or str(user.pk) != claims.user_id
            or session.access_jti != claims.jti):
        raise TokenInvalid()
    refresh = make_refresh_token(session.pk, secret)
    expires_at = capped_end(now + jwt_settings.REFRESH_TOKEN_LIFETIME, session.absolute_expires_at)
    # No previous token: the old one carries the old secret, so no retry of it can pass.
    # The password just checked is the one the session is bound to from now on.
    values: dict[str, Any] = {
        "refresh_token_bcrypt": hash_new_session_secret(secret),
        "secret_check": secret_check_of(secret),
        "auth_binding": binding_of(user.password), "refresh_token_sha256": refresh.sha256,
        "access_jti": new_jti(), "previous_refresh_token_sha256": "", "rotated_at": now,
        "last_activity_at": now, "expires_at": expires_at, "auth_time": now,
        "amr": list(amr)}
    extra = extra_claims(user, session.pk)
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
    return token_pair(session, refresh, now, extra)
