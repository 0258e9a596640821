"""base64url without padding (RFC 4648 section 5), as tokens and Redis names spell it."""
from __future__ import annotations

import base64


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(value: str) -> bytes:
    """The bytes of an unpadded base64url string; binascii.Error (a ValueError) if it is
    none. Callers compare the length they expect."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
