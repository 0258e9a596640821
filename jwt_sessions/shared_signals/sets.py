"""Security Event Tokens (RFC 8417) as SSF shapes them: signed JWTs with `typ:
secevent+jwt`, one event each, the subject in `sub_id`."""
from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

from . import settings as ssf
from .keys import signing_key

SET_TYP = "secevent+jwt"


def new_jti() -> str:
    return secrets.token_urlsafe(16)


def encode_set(audience: str, event_type: str, payload: dict[str, Any],
               subject: dict[str, Any], jti: str | None = None) -> tuple[str, str]:
    """(jti, signed SET) of one event for one audience."""
    jti = jti or new_jti()
    claims = {"iss": ssf.issuer(), "aud": audience, "jti": jti, "iat": int(time.time()),
              "sub_id": subject, "events": {event_type: payload}}
    key = signing_key()
    headers = {"typ": SET_TYP}
    if key.kid:
        headers["kid"] = key.kid
    return jti, jwt.encode(claims, key.private, algorithm=key.algorithm, headers=headers)
