"""Security Event Tokens (RFC 8417) as SSF shapes them: signed JWTs with `typ:
secevent+jwt`, one event each, the subject in `sub_id`, never `sub` nor `exp`."""
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
               subject: dict[str, Any], txn: str) -> tuple[str, str]:
    """(jti, signed SET) of one event for one audience. `txn` names the event that
    caused it: the SETs of one revocation share it, whichever stream carries them."""
    jti = new_jti()
    claims = {"iss": ssf.issuer(), "aud": audience, "jti": jti, "iat": int(time.time()),
              "txn": txn, "sub_id": subject, "events": {event_type: payload}}
    key = signing_key()
    headers = {"typ": SET_TYP}
    if key.kid:
        headers["kid"] = key.kid
    return jti, jwt.encode(claims, key.private, algorithm=key.algorithm, headers=headers)
