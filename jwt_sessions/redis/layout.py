"""What jwt_sessions keeps in Redis, as pure functions: key names, values, and the wire
format of the revocation events. Nothing here does I/O.

Layout (P = REDIS_KEY_PREFIX, s = session id, base64url; t = the first 128 bits of
SHA-256(refresh token), base64url; u = user pk):

    P{s}:s:<t>         "<access jti>|<user pk>|<absolute end, epoch or ->"
                       TTL = refresh expiry
    P{s}:a:<jti>       "<t>": the access token maps back to its session key
                       TTL = access expiry
    P{s}:r             tombstone: no script rewrites the session  TTL = access lifetime
    P{u:u}:sessions    hash {session id hex: 1} of the user's sessions
                       TTL = refresh lifetime
    P{s}:p:<d>         a DPoP proof used with the session's access token (d = 128 bits of
                       SHA-256 of key thumbprint and jti)   TTL = until the proof is too old
    Pp:<d>             a DPoP proof used at login or refresh   TTL = the same
    P{stats}           hash of counters (jwt_sessions.stats)
    Pt:<name>          a throttle counter   TTL = its window

Pub/sub channels: `Pev` carries every revocation and rotation, published in the same
round trip as the change itself (inside the script or pipeline); `Phb:<receiver>` is one
receiver's heartbeat. An event message is a kind byte (R: revoked, O: a pair superseded)
and records of session id (16 bytes), jti length (1 byte), jti. A PUBLISH that fails (an
ACL without the channels) never fails the change it announces: receivers then cannot
prove their subscription, and no local cache is trusted.

Names are short and binary parts base64url because every byte is paid per active
session (see docs/how-it-works.md for the measured sizes); 128 bits of the SHA-256 name a
token uniquely within its session. The user index is a hash, not a set: small hashes are
stored compactly (listpack), small sets of strings are not before Redis 7.2.

Every key of one session shares the hash tag `{s}`, so each script touches one Redis
Cluster slot. A tombstone outlives every access token of its session: while it exists
no script writes the session's keys again, which closes the races where a revocation
and a refresh or rehydration cross each other. The access-token check reads it with the
access key, so a revoked session's tokens cost no SQL.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..conf import jwt_settings
from ..encoding import b64url

# What Redis says of an access token: live, not known (ask the database), or its session
# revoked (a tombstone: refused with no SQL).
HIT, MISS, REVOKED = "hit", "miss", "revoked"
REPLAYED = "replayed"  # an access check whose DPoP proof was claimed before
EVENT_REVOKED, EVENT_ROTATED = b"R", b"O"
EVENT_RECORDS = 1000  # records per event message (~20 KB at most)
MAX_JTI_BYTES = 255  # what a record's length byte can say
STATS_TTL = timedelta(days=30)


@dataclass(frozen=True)
class CachedSession:
    """What Redis knows of a session's current refresh token."""

    access_jti: str
    user_id: str
    absolute_end: int | None


@dataclass(frozen=True)
class SessionKeys:
    """The identifiers needed to find (and drop) one session's keys."""

    session_id: uuid.UUID
    refresh_sha256: str
    access_jti: str
    user_id: Any


def ms(delta: timedelta) -> int:
    """A TTL in milliseconds, never below one (Redis refuses zero)."""
    return max(1, int(delta.total_seconds() * 1000))


# ------------------------------------------------------------------ key names
def _tag(session_id: uuid.UUID) -> str:
    return f"{jwt_settings.REDIS_KEY_PREFIX}{{{b64url(session_id.bytes)}}}"


def token_part(refresh_sha256: str) -> str:
    """What names a refresh token in Redis: 128 bits of its SHA-256 (hex), base64url."""
    return b64url(bytes.fromhex(refresh_sha256[:32]))


def session_key(session_id: uuid.UUID, refresh_sha256: str) -> str:
    return f"{_tag(session_id)}:s:{token_part(refresh_sha256)}"


def access_key(session_id: uuid.UUID, jti: str) -> str:
    return f"{_tag(session_id)}:a:{jti}"


def tombstone_key(session_id: uuid.UUID) -> str:
    return f"{_tag(session_id)}:r"


def user_index_key(user_id: Any) -> str:
    return f"{jwt_settings.REDIS_KEY_PREFIX}{{u:{user_id}}}:sessions"


def dpop_proof_key(jkt: str, jti: str, session_id: uuid.UUID | None = None) -> str:
    """A used DPoP proof, named by 128 bits of SHA-256 of its key and jti (a client picks
    its jti, so it can only ever collide with its own); under its session's hash tag when
    it comes with an access token, so the access check claims it in the same slot and
    round trip. TTL = as long as the proof could pass."""
    digest = b64url(hashlib.sha256(f"{jkt}|{jti}".encode()).digest()[:16])
    if session_id is None:
        return f"{jwt_settings.REDIS_KEY_PREFIX}p:{digest}"
    return f"{_tag(session_id)}:p:{digest}"


def stats_key() -> str:
    return f"{jwt_settings.REDIS_KEY_PREFIX}{{stats}}"


def counter_key(name: str) -> str:
    return f"{jwt_settings.REDIS_KEY_PREFIX}t:{name}"


def events_channel() -> str:
    return f"{jwt_settings.REDIS_KEY_PREFIX}ev"


def heartbeat_channel(receiver: str) -> str:
    return f"{jwt_settings.REDIS_KEY_PREFIX}hb:{receiver}"


def access_check_keys(session_id: uuid.UUID, jti: str) -> tuple[str, str]:
    """What an access check reads, in this order: the access key and the tombstone."""
    return access_key(session_id, jti), tombstone_key(session_id)


def pair_keys(item: SessionKeys) -> tuple[str, str]:
    """The two keys of a session's current pair: its refresh and its access key."""
    return (session_key(item.session_id, item.refresh_sha256),
            access_key(item.session_id, item.access_jti))


# ------------------------------------------------------------------ values
def session_value(access_jti: str, user_id: Any, absolute_end: int | None) -> str:
    return f"{access_jti}|{user_id}|{absolute_end if absolute_end is not None else '-'}"


def parse_session_value(raw: bytes | str) -> CachedSession:
    """The value of a session key; ValueError if garbled."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    # "<jti>|<user id>|<end>": a jti and an end never hold "|", a user id may.
    jti, rest = text.split("|", 1)
    user_id, end = rest.rsplit("|", 1)
    return CachedSession(jti, user_id, None if end == "-" else int(end))


def access_state(access: bytes | None, tombstone: bytes | None) -> str:
    """HIT, MISS or REVOKED from the values of `access_check_keys`."""
    if tombstone is not None:
        return REVOKED
    return HIT if access is not None else MISS


# ------------------------------------------------------------------ event messages
def event_record(session_id: uuid.UUID, jti: str | None = None) -> bytes:
    """One session in an event message; a jti too long for its length byte is left
    out (consumers then drop the whole session, which is always safe)."""
    raw = (jti or "").encode()
    if len(raw) > MAX_JTI_BYTES:
        raw = b""
    return session_id.bytes + bytes([len(raw)]) + raw


def event_messages(kind: bytes, records: list[bytes]) -> list[bytes]:
    """The messages that carry `records`, a bounded number each."""
    return [kind + b"".join(records[start:start + EVENT_RECORDS])
            for start in range(0, len(records), EVENT_RECORDS)]


def parse_event(message: bytes) -> tuple[bytes, list[tuple[uuid.UUID, str | None]]]:
    """(kind, [(session id, jti or None)]) of an event message; ValueError if garbled."""
    if not message or message[:1] not in (EVENT_REVOKED, EVENT_ROTATED):
        raise ValueError("unknown event kind")
    records, at = [], 1
    while at < len(message):
        if at + 17 > len(message):
            raise ValueError("truncated event record")
        session_id = uuid.UUID(bytes=message[at:at + 16])
        end = at + 17 + message[at + 16]
        if end > len(message):
            raise ValueError("truncated jti")
        records.append((session_id, message[at + 17:end].decode() or None))
        at = end
    return message[:1], records
