"""allauth's authentication records as RFC 8176 method names (the `amr` claim).

allauth notes each step of a login in the session (`{"method": "password"}`,
`{"method": "mfa", "type": "totp"}`...); a jwt_sessions access token says the same in
`amr`. Steps that RFC 8176 has no name for (an emailed code, a social provider, a
password reset) add nothing: `amr` never claims more than was checked.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PASSWORD = "pwd"
ONE_TIME_PASSWORD = "otp"
TEXT_MESSAGE = "sms"
HARDWARE_KEY = "hwk"
MULTIPLE_FACTORS = "mfa"

# allauth's MFA authenticator types.
_MFA_TYPES = {"totp": ONE_TIME_PASSWORD, "recovery_codes": ONE_TIME_PASSWORD,
              # allauth cannot tell a security key from a synced passkey: both are
              # proof of possession of a key that the authenticator guards.
              "webauthn": HARDWARE_KEY}


def method_of(record: Mapping[str, Any]) -> str | None:
    """The RFC 8176 name of one allauth authentication record, or None."""
    method = record.get("method")
    if method == "password":
        return PASSWORD
    if method == "mfa":
        return _MFA_TYPES.get(str(record.get("type")))
    if method == "code" and record.get("phone"):
        return TEXT_MESSAGE
    return None


def amr_of(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The `amr` of a login made of these steps: each method once, in the order used,
    and `mfa` when more than one kind of factor was checked."""
    methods: list[str] = []
    for record in records:
        method = method_of(record)
        if method is not None and method not in methods:
            methods.append(method)
    return methods + [MULTIPLE_FACTORS] if len(methods) > 1 else methods
