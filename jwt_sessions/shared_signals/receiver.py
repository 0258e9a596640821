"""Receiving SETs (RFC 8935): check one as the RFC asks, then end what it names.

A SET counts only if a configured transmitter signed it (asymmetric algorithms only,
with a key from its JWKS), for our audience, with `typ: secevent+jwt`, and with a `jti`
not seen before from that issuer: a replay is acknowledged and changes nothing.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import jwt
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from ..models import RevokeReason, Session
from ..text import has_control_characters
from . import events, subjects
from . import settings as ssf
from .jwks import KeyUnavailable, key_for
from .models import SsfReceivedEvent

logger = logging.getLogger("jwt_sessions")

ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA"]
MAX_SET_BYTES = 64 * 1024
IAT_LEEWAY = 60  # seconds a transmitter's clock may run ahead of ours


class SetRefused(Exception):
    """A SET we do not act on, with its RFC 8935 error code."""

    def __init__(self, err: str, description: str) -> None:
        super().__init__(description)
        self.err, self.description = err, description


@dataclass(frozen=True)
class ReceivedSet:
    issuer: str
    jti: str
    claims: dict[str, Any]


def transmitter_of(issuer: Any) -> dict[str, Any] | None:
    for transmitter in ssf.setting("TRANSMITTERS") or []:
        if isinstance(transmitter, dict) and transmitter.get("issuer") == issuer:
            return transmitter
    return None


def verify(token: str) -> ReceivedSet:
    """The claims of a genuine SET for us, or SetRefused."""
    if len(token) > MAX_SET_BYTES or token.count(".") != 2:
        raise SetRefused("invalid_request", "The body is not a compact JWS.")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise SetRefused("invalid_request", "The body is not a compact JWS.") from None
    if str(header.get("typ", "")).lower() not in ("secevent+jwt", "application/secevent+jwt"):
        raise SetRefused("invalid_request", "The JWT is not a SET (typ secevent+jwt).")
    if "crit" in header:
        raise SetRefused("invalid_request", "The SET's header has a critical extension.")
    transmitter = transmitter_of(unverified.get("iss"))
    if transmitter is None:
        raise SetRefused("invalid_issuer", "The SET's issuer is not a configured transmitter.")
    if header.get("alg") not in ASYMMETRIC:
        raise SetRefused("invalid_key", "The SET is not signed with an asymmetric algorithm.")
    kid = header.get("kid")
    try:
        key = key_for(transmitter, kid if isinstance(kid, str) else None)
        claims = jwt.decode(token, key, algorithms=[header["alg"]],
                            options={"verify_aud": False, "verify_iat": False,
                                     "require": ["iss", "iat", "jti"]})
    except (KeyUnavailable, jwt.InvalidSignatureError, jwt.InvalidAlgorithmError,
            jwt.InvalidKeyError):
        raise SetRefused("invalid_key", "The SET's signature does not verify.") from None
    except jwt.InvalidTokenError as exc:
        raise SetRefused("invalid_request", f"The SET is not valid: {exc}.") from None
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if transmitter.get("audience") not in audiences:
        raise SetRefused("invalid_audience", "The SET is not for this receiver's audience.")
    _check_iat(claims.get("iat"))
    jti, event_map = claims.get("jti"), claims.get("events")
    # A control character in the jti would reach the database (PostgreSQL refuses a NUL)
    # and the log.
    if not (isinstance(jti, str) and jti and len(jti) <= 200
            and not has_control_characters(jti)):
        raise SetRefused("invalid_request", "The SET has no valid jti.")
    if not (isinstance(event_map, dict) and event_map
            and all(isinstance(payload, dict) for payload in event_map.values())):
        raise SetRefused("invalid_request", "The SET has no events.")
    return ReceivedSet(str(claims["iss"]), jti, claims)


def _check_iat(iat: Any) -> None:
    """An integer iat, at most IAT_LEEWAY ahead of our clock and no older than the jtis
    we remember (older, a replay could not be told from a new SET). A jti is kept
    RETENTION from its receipt, which may be IAT_LEEWAY before its iat: the leeway comes
    off the oldest iat too. Compared, never subtracted: an integer beyond a float's
    range must be refused, not raise."""
    now = time.time()
    oldest = now - ssf.setting("RETENTION").total_seconds() + IAT_LEEWAY
    if (not isinstance(iat, int) or isinstance(iat, bool) or iat > now + IAT_LEEWAY
            or iat < oldest):
        raise SetRefused("invalid_request", "The SET's iat is missing, ahead or too old.")


def act_on(received: ReceivedSet) -> int:
    """End what the SET's events name, once per `jti`; sessions revoked (0 for a replay
    or an event that names nothing of ours)."""
    from .. import services

    revoked = 0
    with transaction.atomic():
        try:
            with transaction.atomic():
                SsfReceivedEvent.objects.create(issuer=received.issuer, jti=received.jti)
        except IntegrityError:
            logger.info("Security event %s from %s already received", received.jti,
                        received.issuer)
            return 0
        for sessions in _sessions_named(received):
            revoked += services.revoke_sessions(sessions, RevokeReason.SHARED_SIGNAL)
    logger.info("Security event %s from %s ended %d session(s)", received.jti,
                received.issuer, revoked)
    return revoked


def _sessions_named(received: ReceivedSet) -> list[QuerySet[Session]]:
    """The sessions each event we act on names. Every subject is resolved before any
    session ends: a revocation writes Redis at once, which no rollback undoes, so a SET
    refused for its last event must not have ended its first event's sessions."""
    named: list[QuerySet[Session]] = []
    for event_type, payload in received.claims["events"].items():
        if event_type not in events.EVENTS_RECEIVED:
            continue
        # SSF: `sub_id` names the primary subject; older CAEP/RISC SETs may carry
        # theirs only inside the event.
        target = _target(received.claims.get("sub_id", payload.get("subject")),
                         received.issuer)
        if target is None:
            continue
        sessions = Session.objects.active().filter(user_id=target.user_id)
        if event_type == events.SESSION_REVOKED and target.session_id is not None:
            sessions = sessions.filter(pk=target.session_id)
        named.append(sessions)
    return named


def _target(subject: Any, issuer: str) -> subjects.Target | None:
    try:
        return subjects.resolve(subject, issuer)
    except subjects.SubjectUnsupported:
        return None  # a valid SET about someone we cannot name: nothing to end
    except subjects.SubjectInvalid as exc:
        raise SetRefused("invalid_request", f"The SET's subject: {exc}.") from None
