"""Input and output shapes of the HTTP API."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .models import Session

USERNAME_MAX_LENGTH = 256


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and other non-strings instead of coercing them,
    and strings UTF-8 cannot encode (JSON's lone surrogates `"\\ud800"`), which would
    otherwise fail deep inside a password hasher or a database driver."""

    default_error_messages = {"invalid": _("Not a valid string.")}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or not is_utf8_encodable(data):
            self.fail("invalid")
        return super().to_internal_value(data)


def is_utf8_encodable(value: str) -> bool:
    """False for text with lone surrogates, which no database or hasher accepts."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


class LoginSerializer(serializers.Serializer):
    """`{<USERNAME_FIELD>, password}`; the username key follows the user model."""

    password = StrictCharField(max_length=4096, trim_whitespace=False,
                               style={"input_type": "password"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[get_user_model().USERNAME_FIELD] = StrictCharField(
            max_length=USERNAME_MAX_LENGTH)


class AnyStringField(serializers.Field):
    """Any JSON string as is (empty, NUL, surrogates included); other types are a 400.

    A refresh token that is a string but not ours is a 401 `refresh_token_invalid`,
    decided by the token parser, not a field error.
    """

    default_error_messages = {"invalid": _("Not a valid string.")}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> str:
        return value


def _string_member(data: Any, name: str) -> str | None:
    """`data[name]` when `data` is an object and that member a string; else None."""
    value = data.get(name) if isinstance(data, Mapping) else None
    return value if isinstance(value, str) else None


class RefreshSerializer(serializers.Serializer):
    """`{refresh}`; any string is accepted here: a malformed one is a 401, not a 400."""

    refresh = AnyStringField()

    def __init__(self, *args: Any, required: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["refresh"].required = required

    @staticmethod
    def plainly_valid_refresh(data: Any) -> str | None:
        """The `refresh` of a body this serializer certainly accepts (a string one),
        read without a Serializer's per-call cost (its fields copied, its validation
        steps): every refresh sends one. None: anything else, left to the serializer to
        accept or refuse."""
        return _string_member(data, "refresh")


class TokenSerializer(serializers.Serializer):
    """`token` (+ `token_type_hint`) of introspection and revocation (RFC 7662, 7009).

    Any non-empty string is a token to look at (one that is not ours is simply not
    active); the hint is optional and, as the RFCs allow, not needed: the token's shape
    tells its type.
    """

    token = AnyStringField()
    token_type_hint = AnyStringField(required=False)

    def validate_token(self, value: str) -> str:
        if not value:
            raise serializers.ValidationError(_("This field may not be blank."), "blank")
        return value

    @staticmethod
    def plainly_valid_token(data: Any) -> str | None:
        """The token of a body this serializer certainly accepts (a non-empty string
        `token`; no hint, or a string one), read without a Serializer's per-call cost
        (its fields copied, its validation steps): a gateway sends one per request.
        None: anything else, left to the serializer to accept or refuse."""
        token = _string_member(data, "token")
        if not token or not isinstance(data.get("token_type_hint", ""), str):
            return None
        return token


class ReauthenticateSerializer(serializers.Serializer):
    """`{password}` of the user the access token names."""

    password = StrictCharField(max_length=4096, trim_whitespace=False,
                               style={"input_type": "password"})


class LogoutSerializer(serializers.Serializer):
    """Logout takes no body; named so that DRF's OPTIONS metadata can describe it."""


class LogoutAllSerializer(serializers.Serializer):
    keep_current = serializers.BooleanField(required=False, default=False)


class SessionSerializer(serializers.ModelSerializer):
    """One of the user's sessions; `current` marks the one making the request,
    `auth_time`/`amr` say when and how it last proved who its user is, `dpop_bound`
    whether its tokens need proofs by the device's key, `new_device` marks one whose login
    came from a device, country or network the user's earlier sessions had not used
    (`novelty` says which)."""

    current = serializers.SerializerMethodField()
    dpop_bound = serializers.BooleanField(read_only=True)
    new_device = serializers.BooleanField(source="is_new_device")

    class Meta:
        model = Session
        fields = ["id", "created_at", "last_activity_at", "expires_at", "ip_address",
                  "location", "user_agent", "browser", "os", "device", "device_type",
                  "auth_time", "amr", "dpop_bound", "current", "new_device", "novelty"]
        read_only_fields = fields

    def get_current(self, session: Session) -> bool:
        return session.pk == self.context.get("current_session_id")


class IsoDateTimeField(serializers.DateTimeField):
    """`datetime.isoformat()` as is (`+00:00`, not DRF's `Z`): what every Python
    version's `fromisoformat` reads back."""

    def to_representation(self, value: Any) -> str:
        return value.isoformat()


class TokenPairSerializer(serializers.Serializer):
    """The login and refresh answer (and the OpenAPI schema of it); in refresh-cookie mode
    the view drops `refresh` from the body and sets the cookie instead."""

    access = serializers.CharField()
    refresh = serializers.CharField(required=False)
    access_expires_at = IsoDateTimeField()
    refresh_expires_at = IsoDateTimeField()
    session_id = serializers.UUIDField()
    token_type = serializers.ChoiceField(choices=["Bearer", "DPoP"])
