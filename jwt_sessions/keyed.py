"""Keyed digests tied to SECRET_KEY (and its fallbacks), as Django ties its session auth
hash: cheap to check, and worthless to someone who reads the database but not the key."""
from __future__ import annotations

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac


def digest(purpose: str, value: bytes | str) -> str:
    """Hex HMAC-SHA256 of `value` under a key derived from SECRET_KEY and `purpose`."""
    return salted_hmac(purpose, value, algorithm="sha256").hexdigest()


def matches(purpose: str, value: bytes | str, stored: str) -> bool:
    """Whether `stored` is the digest of `value` under SECRET_KEY or one of its fallbacks
    (so rotating SECRET_KEY does not end every session). Every candidate is compared in
    constant time."""
    found = False
    for secret in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())):
        candidate = salted_hmac(purpose, value, secret=secret, algorithm="sha256").hexdigest()
        found |= constant_time_compare(candidate, stored)
    return found
