"""The flows that open and end sessions: issue, revoke, the credentials binding; and what
the per-request check (`access`) and the rotation (`refresh`) share: the token pair and
the bound on database fallbacks. With those two modules, the one place that keeps the
database and Redis in step.

The database is the truth; Redis is a cache that may vouch for a token (so an ordinary
request needs no SQL and an ordinary refresh no bcrypt) but never overrides the database:
every rotation is a compare-and-swap on the session row, so a revoked session can never
be refreshed, and at most one refresh token of a session is live at any moment.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.functional import LazyObject

from . import metrics, signals
from .claims import extra_claims
from .clients import client_info
from .conf import jwt_settings
from .credentials import may_act, refusal
from .crypto import binding_of, hash_new_session_secret, new_session_secret, secret_check_of
from .exceptions import (
    InvalidCredentials,
    RefreshTokenInvalid,
)
from .geoip import place_of
from .models import RevokeReason, Session
from .new_devices import announce, novelty_of, whereabouts_of
from .pairs import TokenPair, capped_end, token_pair
from .redis import mirror
from .redis.mirror import SessionKeys
from .session_caps import evict, sessions_over_cap
from .shared_signals.outbox import record_credential_change, record_revocations
from .tokens import make_refresh_token, new_jti, parse_refresh_token

logger = logging.getLogger("jwt_sessions")



# ------------------------------------------------------------------ issue
def _session_ends(now: datetime) -> tuple[datetime, datetime | None]:
    """(idle expiry, absolute end) of a session that starts or refreshes at `now`."""
    max_lifetime = jwt_settings.SESSION_MAX_LIFETIME
    # Whole seconds: Redis keeps the absolute end as an epoch, and both paths must agree.
    absolute = (now + max_lifetime).replace(microsecond=0) if max_lifetime else None
    return now + jwt_settings.REFRESH_TOKEN_LIFETIME, absolute


def issue_tokens(user: Any, request: Any = None, amr: Iterable[str] = (),
                 login_signal: bool = True, dpop_jkt: str = "") -> TokenPair:
    """Open a session for an authenticated user and return its first token pair.

    The session is bound to the password hash the login checked; if the user's
    credentials moved on meanwhile (a password change, a deactivation racing the
    login), or CLAIMS_HOOK fails, no session is stored. `amr` says how the user proved
    who they are (`["pwd"]` for a password login); it and the time of this login
    (`auth_time`) are the session's until it reauthenticates. `dpop_jkt`: the thumbprint
    of the DPoP key the login proved it holds (the session is then bound to it).
    `login_signal=False`: the caller's flow already sent `user_logged_in` (django-allauth).

    The secret's bcrypt is made here at a login's cost (`crypto.LOGIN_BCRYPT_ROUNDS` at
    most) and raised to BCRYPT_ROUNDS by the first refresh the database decides (see
    `refresh`), the only reader of that column: a login costs the password check and
    little else, and a failed login never reaches this function.
    """
    if isinstance(amr, str):
        raise TypeError("amr is a list of method names, e.g. ['pwd'], not a string")
    secret = new_session_secret()
    now = timezone.now()
    info = client_info(request)
    place = place_of(info.ip_address)
    whereabouts = whereabouts_of(info, place)
    session_id = uuid.uuid4()
    refresh = make_refresh_token(session_id, secret)
    idle_end, absolute_end = _session_ends(now)
    extra = extra_claims(user, session_id)  # before anything is stored: it may fail
    secret_hash = hash_new_session_secret(secret)  # outside the lock on the user's row
    with transaction.atomic():
        _lock_credentials(user)
        over_cap = sessions_over_cap(user)
        novelty = novelty_of(user, whereabouts)
        session = Session.objects.create(
            id=session_id, user=user, refresh_token_bcrypt=secret_hash,
            secret_check=secret_check_of(secret), auth_binding=binding_of(user.password),
            refresh_token_sha256=refresh.sha256, access_jti=new_jti(),
            user_agent=info.user_agent, browser=info.browser, os=info.os, device=info.device,
            device_type=info.device_type, ip_address=info.ip_address,
            location=place.location, **asdict(whereabouts), novelty=novelty,
            created_at=now, last_activity_at=now,
            auth_time=now, amr=list(amr), expires_at=capped_end(idle_end, absolute_end),
            absolute_expires_at=absolute_end, dpop_jkt=dpop_jkt)
        mirror.cache_session(session)
        evict(over_cap)
    logger.info("Session %s opened for user %s", session_id, user.pk)
    metrics.login()
    django_request = getattr(request, "_request", request)
    transaction.on_commit(lambda: signals.session_created.send(
        sender=Session, session=session, request=django_request))
    if novelty:
        transaction.on_commit(lambda: announce(user, session, novelty, django_request))
    if request is not None and login_signal:
        user_logged_in.send(sender=user.__class__, request=django_request, user=user)
    return token_pair(session, refresh, now, extra)


def _lock_credentials(user: Any) -> None:
    """Lock the user's row until the new session is committed, and check that it still
    holds the credentials the login saw: a password change or deactivation that commits
    first is seen here; one that commits later waits for our commit, and then revokes
    the new session like any other."""
    model = type(user)
    fields = ["password"] + (["is_active"] if _has_field(model, "is_active") else [])
    _take_sqlite_write_lock(model, user.pk)
    row = (model._default_manager.select_for_update().filter(pk=user.pk).order_by()
           .values(*fields).first())
    if (row is None or row["password"] != user.password
            or row.get("is_active", True) is False or not may_act(user)):
        logger.info("Login of user %s refused: credentials changed meanwhile", user.pk)
        raise InvalidCredentials()


def _take_sqlite_write_lock(model: Any, pk: Any) -> None:
    """SQLite has no row locks (`select_for_update` does nothing there): a no-op UPDATE of
    the user's row takes the database's write lock before the login reads anything, so
    concurrent logins queue (the session cap counts one after the other) instead of
    failing with "database is locked" when two read first and then both want to write
    (SQLite's deferred transactions: Django before 5.1, or without IMMEDIATE)."""
    if connections[router.db_for_write(model)].vendor != "sqlite":
        return
    pk_field = model._meta.pk.attname
    model._default_manager.filter(pk=pk).update(**{pk_field: F(pk_field)})


def _has_field(model: Any, name: str) -> bool:
    try:
        return model._meta.get_field(name).concrete
    except FieldDoesNotExist:
        return False


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
            record_revocations(keys, reason)  # Shared Signals: in this transaction
        mirror.tombstone(keys)
        revoked.extend(keys)
    if revoked:
        logger.info("%d session(s) revoked (reason: %s)", len(revoked), reason)
        metrics.revoked(reason, len(revoked))
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


def credentials_hold(session: Session) -> bool:
    """The user rule accepts the session's user (loaded with it) and the user has the
    password the session was issued under; if not, the session is revoked here (and
    False returned). Every door that reads a session's row with its user asks this."""
    reason = refusal(session.user, session.auth_binding)
    if reason is None:
        return True
    logger.info("Session %s of user %s: credentials changed; revoked (%s)", session.pk,
                session.user_id, reason)
    if reason == RevokeReason.PASSWORD_CHANGED:
        revoke_for_unseen_password_change(session.user)
    else:
        revoke_sessions(Session.objects.filter(pk=session.pk), reason)
    return False


def revoke_for_unseen_password_change(user: Any) -> int:
    """A password written without a save (`QuerySet.update`, SQL), found out when a door
    reads the session: the user's sessions under another hash end, and the change is
    signalled once, by whichever call revoked them."""
    with transaction.atomic():
        revoked = revoke_for_password_change(user)
        if revoked:
            record_credential_change(user.pk)  # Shared Signals
    return revoked


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
    user = _unwrapped(user)
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


def _unwrapped(user: Any) -> Any:
    """The user object itself behind a lazy `request.user` (the one whose save revoked
    the sessions is the wrapped object, not the wrapper)."""
    if isinstance(user, LazyObject):
        user.pk  # noqa: B018 - loads the wrapped object
        return user._wrapped
    return user


def forget_user_sessions(user_id: Any) -> None:
    """Drop a deleted user's sessions from Redis before their rows cascade away."""
    mirror.tombstone(mirror.session_keys(Session.objects.active().filter(user_id=user_id)))
