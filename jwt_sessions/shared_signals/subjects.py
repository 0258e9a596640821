"""Subject identifiers (RFC 9493, SSF's `complex`) -> the user and session they name.

A user is named by `iss_sub` (the pk, under the transmitter's issuer or ours), `email`
(when exactly one user has it) or `opaque` (the pk); a session by an `opaque` id in the
`session` member of a `complex` subject. A subject that names nothing of ours resolves
to None; a well-formed one in a format we do not map to users (a phone number, a
DID...) raises SubjectUnsupported; one that is not a subject at all, SubjectInvalid.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from ..admin_guards import parse_pk
from ..conf import jwt_settings
from ..text import has_control_characters
from . import settings as ssf

FORMATS = ("iss_sub", "email", "opaque", "complex")
# The other registered formats (RFC 9493, and SSF's own) and the members each requires.
OTHER_FORMATS: dict[str, tuple[str, ...]] = {
    "account": ("uri",), "phone_number": ("phone_number",), "did": ("url",),
    "uri": ("uri",), "aliases": ("identifiers",), "jwt_id": ("iss", "jti"),
    "saml_assertion_id": ("issuer", "assertion_id"), "ip_addresses": ("ip_addresses",),
}


class SubjectInvalid(ValueError):
    """Not a subject identifier this deployment understands."""


class SubjectUnsupported(SubjectInvalid):
    """A valid subject identifier in a format that names none of our users."""


@dataclass(frozen=True)
class Target:
    user_id: Any
    session_id: uuid.UUID | None = None


def _text(subject: dict, name: str) -> str:
    value = subject.get(name)
    if (not isinstance(value, str) or not value or len(value) > 500
            or has_control_characters(value)):
        raise SubjectInvalid(f"a {subject.get('format')} subject needs a string {name!r} "
                             "of at most 500 printable characters")
    return value


def _pk(value: str) -> Any:
    """The pk of the user `value` names, spelt exactly `str(pk)` as a subject carries it:
    '05', '+5' or ' 5' would parse as 5, but they name nobody."""
    model = get_user_model()
    try:
        pk = parse_pk(model, value)  # a number beyond the column's range names nobody
    except (ValidationError, ValueError, TypeError):
        return None
    if str(pk) != value:
        return None
    return pk if model._default_manager.filter(pk=pk).exists() else None


def user_of(subject: Any, issuer: str | None) -> Any:
    """The pk of the user a simple subject names, or None."""
    if not isinstance(subject, dict):
        raise SubjectInvalid("a subject is a JSON object")
    fmt = subject.get("format")
    if not isinstance(fmt, str):
        raise SubjectInvalid("a subject's format is a string")
    if fmt == "iss_sub":
        iss, sub = _text(subject, "iss"), _text(subject, "sub")
        ours = {issuer, ssf.issuer() or None, jwt_settings.ISSUER} - {None}
        return _pk(sub) if iss in ours else None
    if fmt == "opaque":
        return _pk(_text(subject, "id"))
    if fmt == "email":
        model = get_user_model()
        field = model.get_email_field_name()
        matches = list(model._default_manager.filter(
            **{f"{field}__iexact": _text(subject, "email")}).values_list("pk", flat=True)[:2])
        return matches[0] if len(matches) == 1 else None
    if fmt in OTHER_FORMATS and all(subject.get(name) for name in OTHER_FORMATS[fmt]):
        raise SubjectUnsupported(f"unsupported subject format {fmt!r}")
    raise SubjectInvalid(f"not a valid subject identifier (format {fmt!r})")


def resolve(subject: Any, issuer: str | None) -> Target | None:
    """The user (and session) a subject names; None when it names nobody of ours."""
    if isinstance(subject, dict) and subject.get("format") == "complex":
        return _resolve_complex(subject, issuer)
    user_id = user_of(subject, issuer)
    return None if user_id is None else Target(user_id)


def _resolve_complex(subject: dict, issuer: str | None) -> Target | None:
    """A user, a session, or a session of a user; a session of someone else is not
    ended on this subject's word."""
    from ..models import Session

    user, session = subject.get("user"), subject.get("session")
    if user is None and session is None:
        raise SubjectInvalid("a complex subject names a user or a session")
    user_id = None if user is None else user_of(user, issuer)
    if session is None:
        return None if user_id is None else Target(user_id)
    session_id = _session_id(session)
    owner = None if session_id is None else Session.objects.filter(
        pk=session_id).values_list("user_id", flat=True).first()
    if owner is None or (user is not None and owner != user_id):
        return None
    return Target(owner, session_id)


def _session_id(subject: Any) -> uuid.UUID | None:
    """The session id of an `opaque` session subject; None for an id not shaped as ours."""
    if not isinstance(subject, dict) or subject.get("format") != "opaque":
        raise SubjectInvalid("a session is named by an opaque subject")
    text = _text(subject, "id")  # outside the try: SubjectInvalid is a ValueError too
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
