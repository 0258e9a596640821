"""Verifying one DPoP proof (RFC 9449, section 4.3): a JWT signed by the key in its own
header, naming the request it was made for.

The checks, in order: one well-formed JWT; `typ: dpop+jwt`; an accepted asymmetric
`alg` and a public `jwk` of the kind that alg names; the signature by that key; `jti`,
`htm`, `htu` and `iat` present; `htm` and `htu` those of this request; `iat` within
PROOF_MAX_AGE of now; `ath` the hash of the access token when one is presented; and a
current server nonce when nonces are on. Replay (`jti` used once) is `replay`'s job.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
from django.utils.translation import gettext_lazy as _

from ..conf import cached_per_settings
from . import nonces, signatures
from .errors import InvalidDPoPProof, UseDPoPNonce
from .settings import dpop_settings
from .thumbprints import b64url, jwk_thumbprint

PROOF_TYP = "dpop+jwt"
# A proof with an RSA-4096 key is under 2 KB; refuse anything far larger unread.
MAX_PROOF_LENGTH = 8192
MAX_JTI_LENGTH = 256
# Members only a private (or symmetric) JWK has: a proof carrying one is refused.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# The key each algorithm verifies with: (kty, curves allowed or None for any).
_KEY_KINDS: dict[str, tuple[str, frozenset[str] | None]] = {
    "ES256": ("EC", frozenset({"P-256"})), "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})), "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    **{name: ("RSA", None) for name in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
}
_MIN_RSA_BITS = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# A compact JWS is three unpadded base64url segments: these bytes and two dots, nothing
# else (which also refuses two DPoP headers, which servers join with ",").
_BASE64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_JWS_BYTES = _BASE64URL + b"."
# Distinct request URIs whose normal form is remembered.
_URI_MEMO_SIZE = 1024


@dataclass(frozen=True)
class Proof:
    """A proof whose claims fit the request: its key's thumbprint, its `jti` and `iat`
    (for replay), and its signature's check, made once (`verify_proof` makes it first;
    the access check makes it while Redis answers)."""

    jkt: str
    jti: str
    iat: float
    signature: Signature = field(compare=False, repr=False)


class Signature:
    """Whether a proof's signature holds, computed on first asking. A header whose
    signature held is remembered (its JWK then not parsed again)."""

    __slots__ = ("_header_key", "_segment", "_signed", "_signature", "_holds")

    def __init__(self, header_key: _HeaderKey, segment: str | None, signed: bytes,
                 signature: bytes) -> None:
        self._header_key, self._segment = header_key, segment  # segment: to remember
        self._signed, self._signature = signed, signature
        self._holds: bool | None = None

    def holds(self) -> bool:
        if self._holds is None:
            self._holds = self._header_key.verify(self._signed, self._signature)
            if self._holds and self._segment is not None:
                _remember(self._segment, self._header_key)
        return self._holds


@dataclass(frozen=True)
class _HeaderKey:
    """What a proof's header settles: its key's signature check and thumbprint."""

    verify: signatures.Verifier
    jkt: str


def access_token_hash(token: str) -> str:
    """`ath`: base64url SHA-256 of the access token (RFC 9449, section 4.2)."""
    return b64url(hashlib.sha256(token.encode()).digest())


def normalized_uri(uri: str) -> str:
    """An absolute URI as RFC 3986 compares them (sections 6.2.2 and 6.2.3): scheme and
    host in lower case, no default port, no query or fragment, an empty path as `/`,
    percent-encodings in upper case and unreserved characters decoded. "" if malformed,
    and for an authority with userinfo or a backslash, which parsers read differently
    (RFC 9110, section 4.2.4: an error for http and https)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if not scheme or not host or "@" in parts.netloc or "\\" in parts.netloc:
        return ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = _PERCENT.sub(_normal_escape, parts.path) or "/"
    return f"{scheme}://{host}{path}"


# The request's URI in normal form, remembered (bounded): a server sees the same few URIs
# on every request. A client's `htu` is not: it is read before its signature is checked.
_normalized_request_uri = functools.lru_cache(maxsize=_URI_MEMO_SIZE)(normalized_uri)


def _same_uri(htu: str, uri: str) -> bool:
    """Whether a proof's `htu` names the request's URI; "" (a request without a host)
    matches nothing."""
    expected = _normalized_request_uri(uri)
    return bool(expected) and (htu == uri or normalized_uri(htu) == expected)


def _normal_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else f"%{match.group(1).upper()}"


def verify_proof(value: Any, *, method: str, uri: str, access_token: str | None = None,
                 now: float | None = None) -> Proof:
    """The verified proof for a request (`method`, absolute `uri`), presented with
    `access_token` or, at login and refresh, with none; InvalidDPoPProof or
    UseDPoPNonce otherwise."""
    proof = read_proof(value, method=method, uri=uri, access_token=access_token, now=now)
    if not proof.signature.holds():
        raise InvalidDPoPProof()
    return proof


def read_proof(value: Any, *, method: str, uri: str, access_token: str | None = None,
               now: float | None = None) -> Proof:
    """`verify_proof` but for the signature, whose check is left to the caller
    (`Proof.signature`): every other check passed. Nothing of the proof is remembered
    before its signature holds."""
    raw = _compact_jws(value)
    settings = dpop_settings()
    head_end, body_end = raw.index(b"."), raw.rindex(b".")
    segment = value[:head_end]
    known = keys_by_header().get(segment)
    header_key = known or _key_of_header(segment, settings.algorithms)
    payload = _json(_b64decode(raw[head_end + 1:body_end]))
    claims = _claims(payload)
    now = time.time() if now is None else now
    if claims["htm"] != method or not _same_uri(claims["htu"], uri):
        raise InvalidDPoPProof(_("The DPoP proof was made for another request."))
    if not abs(now - float(claims["iat"])) <= settings.proof_max_age.total_seconds():
        raise InvalidDPoPProof(_("The DPoP proof is too old or from the future."))
    ath = claims.get("ath")
    if access_token is not None and not (
            isinstance(ath, str) and hmac.compare_digest(ath, access_token_hash(access_token))):
        raise InvalidDPoPProof(_("The DPoP proof is not for this access token."))
    if settings.nonce and not nonces.is_fresh(claims.get("nonce")):
        raise UseDPoPNonce()
    signature = Signature(header_key, None if known else segment, raw[:body_end],
                          _b64decode(raw[body_end + 1:]))
    return Proof(header_key.jkt, claims["jti"], float(claims["iat"]), signature)


def _claims(payload: Any) -> Mapping[str, Any]:
    """The payload, once `jti`, `htm`, `htu` are strings (`jti` of ASCII, bounded) and
    `iat` a finite number; `ath`, when present, ASCII too (it is compared as bytes)."""
    if not isinstance(payload, dict):
        raise InvalidDPoPProof()
    jti, htm, htu, iat = (payload.get(name) for name in ("jti", "htm", "htu", "iat"))
    ath = payload.get("ath", "")
    if not (isinstance(jti, str) and 0 < len(jti) <= MAX_JTI_LENGTH and jti.isascii()
            and isinstance(htm, str) and isinstance(htu, str) and _is_time(iat)
            and (not isinstance(ath, str) or ath.isascii())):
        raise InvalidDPoPProof(_("The DPoP proof lacks jti, htm, htu or iat."))
    return payload


def _is_time(value: Any) -> bool:
    """A NumericDate: a number (not a bool), finite once a float (no NaN, no infinity,
    no integer too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _compact_jws(value: Any) -> bytes:
    """The proof as ASCII bytes, if it is a compact JWS of a sane size; else refused."""
    if not isinstance(value, str) or len(value) > MAX_PROOF_LENGTH or not value.isascii():
        raise InvalidDPoPProof()
    raw = value.encode("ascii")
    if (raw.count(b".") != 2 or raw.translate(None, _JWS_BYTES) or b".." in raw
            or raw[:1] == b"." or raw[-1:] == b"."):
        raise InvalidDPoPProof()
    return raw


def _json(raw: bytes) -> Any:
    """A segment's JSON; refused if not JSON, not UTF-8, or nested too deep to parse."""
    try:
        return json.loads(raw.decode())
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidDPoPProof() from exc


def _b64decode(segment: bytes) -> bytes:
    """An unpadded base64url segment (its alphabet already checked)."""
    try:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidDPoPProof() from exc


def _key_of_header(segment: str, algorithms: tuple[str, ...]) -> _HeaderKey:
    """The key a proof header carries, once the header has proved acceptable."""
    header = _json(_b64decode(segment.encode()))
    if not isinstance(header, dict) or header.get("typ") != PROOF_TYP:
        raise InvalidDPoPProof(_("A DPoP proof has the header typ 'dpop+jwt'."))
    alg, jwk = header.get("alg"), header.get("jwk")
    if not isinstance(alg, str) or alg not in algorithms or alg not in _KEY_KINDS:
        raise InvalidDPoPProof(_("The DPoP proof's algorithm is not accepted here."))
    if "crit" in header or not isinstance(jwk, dict) or _PRIVATE_MEMBERS.intersection(jwk):
        raise InvalidDPoPProof(_("The DPoP proof's header must carry a public jwk."))
    kty, curves = _KEY_KINDS[alg]
    crv = jwk.get("crv")
    if jwk.get("kty") != kty or (curves is not None
                                 and not (isinstance(crv, str) and crv in curves)):
        raise InvalidDPoPProof(_("The DPoP proof's key does not fit its algorithm."))
    try:
        key = signatures.public_key(jwk, alg)
        jkt = jwk_thumbprint(jwk)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        raise InvalidDPoPProof(_("The DPoP proof's key is malformed.")) from exc
    if kty == "RSA" and key.key_size < _MIN_RSA_BITS:
        raise InvalidDPoPProof(_("The DPoP proof's RSA key is too small."))
    return _HeaderKey(signatures.verifier(key, alg), jkt)


# A client signs every proof with the same header: remembering the key of a header that
# came with a valid signature saves parsing the JWK on every request. Bounded; only
# headers whose signature verified enter, so nobody fills it with junk for free.
_HEADER_MEMO_SIZE = 4096


@cached_per_settings
def keys_by_header() -> dict[str, _HeaderKey]:
    """Encoded proof header -> its key, for headers that came with a valid signature."""
    return {}


def _remember(segment: str, header_key: _HeaderKey) -> None:
    memo = keys_by_header()
    memo[segment] = header_key
    while len(memo) > _HEADER_MEMO_SIZE:
        try:
            memo.pop(next(iter(memo)), None)
        except (StopIteration, RuntimeError):  # emptied or changed by another thread
            break
