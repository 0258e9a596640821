"""Server nonces (`DPoP-Nonce`): stateless, so every process accepts what any issued.

A nonce names a time slot and carries a MAC of it under a key derived from SECRET_KEY:
no storage, no round trip, and a nonce is good for the slot it was issued in and the
next one (so at least NONCE_LIFETIME, at most twice that).
"""
from __future__ import annotations

import base64
import binascii
import time

from django.utils.crypto import constant_time_compare, salted_hmac

from .settings import dpop_settings
from .thumbprints import b64url

_PURPOSE = "jwt_sessions.dpop-nonce"
_MAC_BYTES = 16


def _slot_length() -> int:
    return max(1, int(dpop_settings().nonce_lifetime.total_seconds()))


def _mac(slot: int) -> bytes:
    return salted_hmac(_PURPOSE, str(slot), algorithm="sha256").digest()[:_MAC_BYTES]


def _current_slot() -> int:
    return int(time.time()) // _slot_length()


def new_nonce() -> str:
    """The nonce for now: clients put it in their proofs' `nonce` claim."""
    slot = _current_slot()
    return b64url(slot.to_bytes(8, "big") + _mac(slot))


def is_fresh(nonce: object) -> bool:
    """Whether `nonce` is one this deployment issued in this slot or the one before."""
    if not isinstance(nonce, str) or len(nonce) > 64:
        return False
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 8 + _MAC_BYTES:
        return False
    slot = int.from_bytes(raw[:8], "big")
    if slot not in (_current_slot(), _current_slot() - 1):
        return False
    return constant_time_compare(raw[8:], _mac(slot))
