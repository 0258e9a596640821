"""The secret helpers, in one small room: keyed digests tied to SECRET_KEY, the session
secret (made, bcrypt-hashed, checked), and the binding of a session to its user's
password hash.

Keyed digests are tied to SECRET_KEY (and its fallbacks), as Django ties its session auth
hash: cheap to check, and worthless to someone who reads the database but not the key.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import bcrypt
from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from .conf import jwt_settings

SECRET_BYTES = 32  # a session secret, and a refresh token's rotating part
_SECRET_CHECK = "jwt_sessions.refresh-secret-check"
_BINDING = "jwt_sessions.credentials-binding"


# ------------------------------------------------------------------ keyed digests
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


# ------------------------------------------------------------------ session secrets
def new_session_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def _bcrypt_input(secret: bytes) -> bytes:
    # bcrypt reads 72 bytes at most (bcrypt 5 raises above): hash a fixed-size digest of
    # the whole secret, domain-separated so it never equals the lookup SHA-256.
    mac = hmac.new(b"jwt_sessions.refresh-secret", secret, hashlib.sha256).digest()
    return base64.b64encode(mac)


# A login hashes its new secret at this cost at most. The secret is 256 random bits: no
# work factor is needed against guessing it, so a login should cost the password check
# and little else (bcrypt 12 would add two thirds of a PBKDF2 login). The first refresh
# the database decides raises the hash to BCRYPT_ROUNDS, as Django raises a password
# hasher's work factor at the next login.
LOGIN_BCRYPT_ROUNDS = 8


def hash_session_secret(secret: bytes, rounds: int | None = None) -> str:
    """bcrypt of the whole secret, at `rounds` (default BCRYPT_ROUNDS)."""
    salt = bcrypt.gensalt(rounds=rounds or jwt_settings.BCRYPT_ROUNDS)
    return bcrypt.hashpw(_bcrypt_input(secret), salt).decode()


def hash_new_session_secret(secret: bytes) -> str:
    """The hash a login or a reauthentication stores for the secret it has just made."""
    return hash_session_secret(secret, min(jwt_settings.BCRYPT_ROUNDS, LOGIN_BCRYPT_ROUNDS))


def below_configured_cost(hashed: str) -> bool:
    """Whether a stored hash costs less than BCRYPT_ROUNDS (a login's, to be raised)."""
    try:
        return int(hashed.split("$")[2]) < jwt_settings.BCRYPT_ROUNDS
    except (IndexError, ValueError):
        return False


def secret_check_of(secret: bytes) -> str:
    """The cheap check of a session secret: tells a genuine refresh token from a forged
    one before any bcrypt runs (so a stranger costs no bcrypt), keyed so that the
    database alone does not let anyone test guesses."""
    return digest(_SECRET_CHECK, secret)


def secret_check_matches(secret: bytes, stored: str) -> bool:
    return matches(_SECRET_CHECK, secret, stored)


def check_session_secret(secret: bytes, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_bcrypt_input(secret), hashed.encode())
    except ValueError:
        return False


# ------------------------------------------------------------------ credentials binding
def binding_of(password_hash: str | None) -> str:
    """The binding a session issued under this password hash carries."""
    return digest(_BINDING, password_hash or "")


def is_bound(binding: str, password_hash: str | None) -> bool:
    """Whether a session's binding still matches the user's password hash.

    Always true with REVOKE_ON_PASSWORD_CHANGE off, and for rows issued before
    sessions carried a binding (empty)."""
    if not jwt_settings.REVOKE_ON_PASSWORD_CHANGE or not binding:
        return True
    return matches(_BINDING, password_hash or "", binding)
