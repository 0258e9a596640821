"""Tokens: the only module that speaks JWT, and the maker of refresh tokens.

Access token: a JWT (`typ: at+jwt`) naming the user (`sub`), the session (`sid`) and
itself (`jti`). Refresh token: 80 random-looking bytes, base64url, laid out as
`session id (16) | session secret (32) | rotating part (32)`. The session secret is fixed
for the life of a session and bcrypt-hashed once at login; the rotating part changes on
every refresh. SHA-256 of the whole token is the lookup key, so an ordinary refresh
(Redis vouches for the SHA-256) never runs bcrypt, while a stolen database still holds
nothing that can be turned back into a token.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import jwt
from jwt.algorithms import get_default_algorithms

from .conf import cached_per_settings, jwt_settings
from .crypto import SECRET_BYTES
from .encoding import b64url, b64url_decode

TOKEN_TYPE = "access"
JWT_TYP = "at+jwt"
REQUIRED_CLAIMS = ["sub", "sid", "jti", "iat", "exp", "token_type"]
# Claims whose meaning is ours: a project's own claims (CLAIMS_HOOK) may not set them.
# `nbf` too, as PyJWT would enforce it.
RESERVED_CLAIMS = frozenset(REQUIRED_CLAIMS + ["iss", "aud", "auth_time", "amr", "nbf", "cnf"])
_REFRESH_BYTES = 16 + 2 * SECRET_BYTES
# A refresh token's length: 80 bytes in base64url without padding.
REFRESH_TOKEN_LENGTH = len(b64url(bytes(_REFRESH_BYTES)))


class InvalidToken(Exception):
    """The access token is forged, malformed or of the wrong kind."""


class ExpiredToken(InvalidToken):
    """The access token's `exp` has passed."""


@dataclass(frozen=True)
class AccessClaims:
    """A verified access token, as `request.auth`.

    `auth_time` is when the user last proved who they are (login or reauthentication;
    None for a token issued before the claim existed), `amr` how (`["pwd"]`), and
    `extra` the project's own claims (CLAIMS_HOOK), e.g. `request.auth.extra["roles"]`.
    `dpop_jkt` is the thumbprint of the DPoP key the token is bound to (`cnf.jkt`), or
    None for a bearer token.
    """

    user_id: str
    session_id: uuid.UUID
    jti: str
    expires_at: datetime
    issued_at: datetime | None = None
    auth_time: datetime | None = None
    amr: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)
    dpop_jkt: str | None = None


@dataclass(frozen=True)
class RefreshToken:
    """A parsed refresh token; `sha256` is the lookup key of the whole token."""

    value: str
    session_id: uuid.UUID
    secret: bytes
    sha256: str


# ------------------------------------------------------------------ refresh tokens
def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def make_refresh_token(session_id: uuid.UUID, secret: bytes) -> RefreshToken:
    """A fresh token for the session: same secret, new rotating part."""
    raw = session_id.bytes + secret + secrets.token_bytes(SECRET_BYTES)
    value = b64url(raw)
    return RefreshToken(value, session_id, secret, sha256_hex(value))


def parse_refresh_token(value: Any) -> RefreshToken | None:
    """None for anything that is not a refresh token of ours (no exception to leak)."""
    if not isinstance(value, str) or len(value) != REFRESH_TOKEN_LENGTH:
        return None
    try:
        raw = b64url_decode(value)
    except ValueError:  # binascii.Error, or a character outside ASCII
        return None
    if len(raw) != _REFRESH_BYTES or b64url(raw) != value:
        return None
    return RefreshToken(value, uuid.UUID(bytes=raw[:16]), raw[16:48], sha256_hex(value))


# ------------------------------------------------------------------ keys
def _algorithm(name: str):
    return get_default_algorithms()[name]


def _load_keys() -> tuple[Any, dict[str | None, Any]]:
    """Prepared (signing key, {kid: verifying key}) for the configured algorithm."""
    algorithm = _algorithm(jwt_settings.ALGORITHM)
    is_hmac = jwt_settings.ALGORITHM.startswith("HS")
    signing = algorithm.prepare_key(jwt_settings.SIGNING_KEY)
    primary = signing if is_hmac else algorithm.prepare_key(jwt_settings.VERIFYING_KEY)
    verifying = {kid: algorithm.prepare_key(key)
                 for kid, key in (jwt_settings.ADDITIONAL_VERIFYING_KEYS or {}).items()}
    verifying[jwt_settings.KEY_ID] = primary  # the current key wins a clashing kid
    return signing, verifying


@cached_per_settings
def _keys() -> tuple[Any, dict[str | None, Any]]:
    return _load_keys()


def jwks() -> dict:
    """Public verifying keys as a JWKS (none of HMAC's: those keys are secrets)."""
    from .shared_signals.keys import published_jwk

    set_key = published_jwk()  # an HS* deployment's SET key, public for receivers
    keys = [] if set_key is None else [set_key]
    if jwt_settings.ALGORITHM.startswith("HS"):
        return {"keys": keys}
    algorithm = _algorithm(jwt_settings.ALGORITHM)
    for kid, key in _keys()[1].items():
        jwk = json.loads(algorithm.to_jwk(key))
        public = {name: jwk[name] for name in ("kty", "crv", "n", "e", "x", "y") if name in jwk}
        public.update({"alg": jwt_settings.ALGORITHM, "use": "sig"})
        if kid:
            public["kid"] = kid
        keys.append(public)
    return {"keys": keys}


# ------------------------------------------------------------------ access tokens
def encode_access_token(user_id: Any, session_id: uuid.UUID, jti: str, now: datetime,
                        session_end: datetime | None = None, *, auth_time: datetime,
                        amr: Sequence[str], extra: Mapping[str, Any] | None = None,
                        dpop_jkt: str | None = None) -> tuple[str, datetime]:
    """Sign an access token; returns (token, expiry). No access token outlives its
    session (`session_end`, e.g. SESSION_MAX_LIFETIME's absolute end). `auth_time` and
    `amr` are the session's (when and how the user last proved who they are); `extra`
    holds the project's own claims, which never replace ours; `dpop_jkt` binds the
    token to a DPoP key (`cnf.jkt`, RFC 9449)."""
    expires_at = now + jwt_settings.ACCESS_TOKEN_LIFETIME
    if session_end is not None:
        expires_at = min(expires_at, session_end)
    claims: dict[str, Any] = {
        **(extra or {}),
        "sub": str(user_id),
        "sid": str(session_id),
        "jti": jti,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "token_type": TOKEN_TYPE,
        "auth_time": int(auth_time.timestamp()),
        "amr": list(amr),
    }
    if dpop_jkt:
        claims["cnf"] = {"jkt": dpop_jkt}
    if jwt_settings.ISSUER:
        claims["iss"] = jwt_settings.ISSUER
    if jwt_settings.AUDIENCE:
        claims["aud"] = jwt_settings.AUDIENCE
    headers = {"typ": JWT_TYP}
    if jwt_settings.KEY_ID:
        headers["kid"] = jwt_settings.KEY_ID
    token = jwt.encode(claims, _keys()[0], algorithm=jwt_settings.ALGORITHM, headers=headers)
    return token, datetime.fromtimestamp(claims["exp"], tz=timezone.utc)


def new_jti() -> str:
    # 96 random bits: unique without coordination, and short, as each jti is stored twice
    # per active session in Redis (access key name, session value) and sent in every JWT.
    return secrets.token_urlsafe(12)


def _check_header(header: dict) -> None:
    if header.get("typ") != JWT_TYP:
        raise InvalidToken("wrong typ")
    if "crit" in header:
        raise InvalidToken("crit header")


def decode_access_token(token: str) -> AccessClaims:
    """Verify signature, algorithm, type and claims; raise InvalidToken otherwise.

    Only the configured algorithm is accepted (so `none` and HS/RS confusion are
    impossible); `kid` only picks among configured keys; key-pointing headers (`jku`,
    `jwk`, `x5u`, `x5c`) are ignored because the key never comes from the token.
    A token verified before in this process (and under these settings) is only checked
    for expiry: its signature cannot have changed.
    """
    memo = verified_tokens()
    known = memo.get(token)
    if known is not None:
        claims, deadline = known
        if time.time() < deadline:
            return claims
        memo.pop(token, None)
        raise ExpiredToken("expired")
    claims = _verify(token)
    _remember_verified(memo, token, claims)
    return claims


# Live tokens whose signature this process checked: few per client, one per request in
# flight at most. Past the bound the oldest go first; only verified tokens ever enter, so
# nobody without the signing key can push the real ones out.
_VERIFIED_MEMO_SIZE = 4096


def _remember_verified(memo: dict, token: str, claims: AccessClaims) -> None:
    # Valid while now < exp + leeway, exactly as PyJWT decides.
    memo[token] = (claims, claims.expires_at.timestamp()
                   + jwt_settings.LEEWAY.total_seconds())
    while len(memo) > _VERIFIED_MEMO_SIZE:
        try:
            memo.pop(next(iter(memo)), None)
        except (StopIteration, RuntimeError):  # emptied or changed by another thread
            break


@cached_per_settings
def _decode_arguments() -> dict[str, Any]:
    """PyJWT's verification arguments under the current settings (built once)."""
    return {
        "algorithms": [jwt_settings.ALGORITHM],
        "audience": jwt_settings.AUDIENCE,
        "issuer": jwt_settings.ISSUER,
        "leeway": jwt_settings.LEEWAY,
        # A string AUDIENCE: `aud` must be that string itself, as we issue it (strict).
        # A list: `aud` must name one of them, PyJWT's rule for a list.
        "options": {"require": _required_claims(), "verify_sub": False,
                    "verify_jti": False,
                    "strict_aud": isinstance(jwt_settings.AUDIENCE, str)},
    }


@cached_per_settings
def verified_tokens() -> dict[str, Any]:
    """Token -> (claims, expiry) of tokens whose signature this process has checked."""
    return {}


def _verify(token: str) -> AccessClaims:
    segment = token.partition(".")[0]
    memo = key_by_header()
    try:
        key = memo.get(segment)
        if key is None:
            key = _key_for_header(token)
        decoded = jwt.api_jwt.decode_complete(
            token, key, **_decode_arguments())
    except jwt.ExpiredSignatureError as exc:
        raise ExpiredToken("expired") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken("invalid") from exc
    _check_header(decoded["header"])
    # Only a header that came with a valid signature is remembered, so nobody but the
    # signer can fill the memo and push the real headers out of it.
    if segment not in memo and len(memo) < _HEADER_MEMO_SIZE:
        memo[segment] = key
    return _claims(decoded["payload"])


# Distinct valid headers are few (one per kid): past this many, stop remembering them.
_HEADER_MEMO_SIZE = 16


@cached_per_settings
def key_by_header() -> dict[str, Any]:
    """Encoded JWT header -> its verifying key, for headers that came with a valid
    signature (the hot path parses a header once)."""
    return {}


def _key_for_header(token: str) -> Any:
    """The configured key a token's `kid` names; no `kid` means the current key. A `kid`
    that names no configured key is refused, even when only one key exists. Remembered
    per encoded header by `decode_access_token`: the hot path parses the header once."""
    verifying = _keys()[1]
    kid = jwt.get_unverified_header(token).get("kid")
    if kid is None:
        return verifying[jwt_settings.KEY_ID]
    if not isinstance(kid, str) or kid not in verifying:
        raise InvalidToken("unknown kid")
    return verifying[kid]


def _required_claims() -> list[str]:
    extra = [name for name, value in (("iss", jwt_settings.ISSUER),
                                       ("aud", jwt_settings.AUDIENCE)) if value]
    return REQUIRED_CLAIMS + extra


def _claims(payload: dict) -> AccessClaims:
    if payload.get("token_type") != TOKEN_TYPE:
        raise InvalidToken("wrong token_type")
    sub, jti, sid = payload.get("sub"), payload.get("jti"), payload.get("sid")
    if not (isinstance(sub, str) and sub and isinstance(jti, str) and jti
            and isinstance(sid, str)):
        raise InvalidToken("bad claims")
    try:
        session_id = uuid.UUID(sid)
    except ValueError as exc:
        raise InvalidToken("bad sid") from exc
    auth_time, amr = payload.get("auth_time"), payload.get("amr", [])
    if auth_time is not None and (not isinstance(auth_time, int) or isinstance(auth_time, bool)):
        raise InvalidToken("bad auth_time")
    if not (isinstance(amr, list) and all(isinstance(method, str) for method in amr)):
        raise InvalidToken("bad amr")
    return AccessClaims(
        sub, session_id, jti, _datetime(payload["exp"]), issued_at=_datetime(payload["iat"]),
        auth_time=None if auth_time is None else _datetime(auth_time), amr=tuple(amr),
        extra={name: value for name, value in payload.items() if name not in RESERVED_CLAIMS},
        dpop_jkt=_bound_key(payload))


def _bound_key(payload: dict) -> str | None:
    """The DPoP thumbprint a token is bound to (`cnf.jkt`); a `cnf` of another shape is
    refused rather than read as "not bound"."""
    if "cnf" not in payload:
        return None
    cnf = payload["cnf"]
    if not (isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str) and cnf["jkt"]):
        raise InvalidToken("bad cnf")
    return cnf["jkt"]


def _datetime(epoch: int | float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)
