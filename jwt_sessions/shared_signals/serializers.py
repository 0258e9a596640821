"""Input of the stream-management endpoints: SSF 1.0 bodies, checked field by field."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from rest_framework import serializers

from ..conf import jwt_settings
from . import settings as ssf
from .events import POLL, PUSH
from .models import SsfStream, StreamStatus

# A stream created or replaced without `delivery` is a poll stream (SSF).
POLL_DELIVERY = {"method": POLL}
_http_url = URLValidator(schemes=["http", "https"])
# What an HTTP header value may hold: visible ASCII, spaces and tabs.
_SENDABLE = frozenset(map(chr, range(0x20, 0x7F))) | {"\t"}


class DeliverySerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=[PUSH, POLL])
    endpoint_url = serializers.CharField(required=False, max_length=2000)
    authorization_header = serializers.CharField(required=False, max_length=4000,
                                                 allow_blank=True)

    def validate_authorization_header(self, value: str) -> str:
        """A header with a line break or another control character is one no push can
        send (or, sent, would add headers of the receiver's choosing): refused now, not
        found out after MAX_ATTEMPTS failed pushes."""
        if not _SENDABLE.issuperset(value):
            raise serializers.ValidationError(
                "An HTTP header value: visible ASCII and spaces only.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["method"] == POLL:
            # The transmitter names the poll endpoint: what a receiver sends back is ignored.
            attrs.pop("endpoint_url", None)
            return attrs
        try:
            _http_url(attrs.get("endpoint_url", ""))
        except DjangoValidationError:
            raise serializers.ValidationError(
                {"endpoint_url": "A push stream needs the receiver's http(s) endpoint_url."}
            ) from None
        return attrs


class StreamSerializer(serializers.Serializer):
    """The members of a stream's configuration a receiver writes."""

    delivery = DeliverySerializer(required=False)
    # Any event URIs: the stream delivers those of them this transmitter supports.
    events_requested = serializers.ListField(child=serializers.CharField(max_length=300),
                                             required=False, max_length=50)
    description = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class StreamCreateSerializer(StreamSerializer):
    """A POST body; `aud`, the audience the stream's SETs carry, is chosen here or is
    the stream's own URN, and never changes after. Needs the request in its context."""

    aud = serializers.CharField(required=False, max_length=500)

    def validate_aud(self, value: str) -> str:
        """An audience names one receiver. A stream with another account's, or with one
        this deployment itself answers to, would hand its owner genuine SETs to replay
        where that audience is trusted."""
        owner = self.context["request"].user.pk
        if value in own_audiences() or SsfStream.objects.filter(audience=value).exclude(
                owner_id=owner).exists():
            raise serializers.ValidationError("This audience names another receiver.")
        return value


def own_audiences() -> set[str]:
    """The audiences this deployment answers to: its access tokens' and the ones its
    transmitters send SETs for."""
    access = jwt_settings.AUDIENCE or []
    audiences = {access} if isinstance(access, str) else set(access)
    transmitters = [entry for entry in ssf.setting("TRANSMITTERS") or []
                    if isinstance(entry, dict)]
    return audiences | {entry["audience"] for entry in transmitters
                        if isinstance(entry.get("audience"), str)}


class StreamIdSerializer(serializers.Serializer):
    # Any string: one that names no stream of the caller's is a 404, as SSF asks.
    stream_id = serializers.CharField(max_length=100)


class StreamUpdateSerializer(StreamIdSerializer, StreamSerializer):
    """A PATCH or PUT body. Transmitter-supplied members may be sent back, and must then
    equal what the stream has (the view compares them)."""

    iss = serializers.CharField(required=False, max_length=500)
    aud = serializers.JSONField(required=False)
    events_supported = serializers.JSONField(required=False)
    events_delivered = serializers.JSONField(required=False)


TRANSMITTER_SUPPLIED = ("iss", "aud", "events_supported", "events_delivered")


class StatusSerializer(StreamIdSerializer):
    status = serializers.ChoiceField(choices=StreamStatus.values)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class VerificationSerializer(StreamIdSerializer):
    state = serializers.CharField(required=False, max_length=1000)


class SetErrorSerializer(serializers.Serializer):
    err = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class PollSerializer(serializers.Serializer):
    maxEvents = serializers.IntegerField(required=False, min_value=0, default=100)  # noqa: N815
    returnImmediately = serializers.BooleanField(required=False, default=False)  # noqa: N815
    ack = serializers.ListField(child=serializers.CharField(max_length=64), required=False,
                                default=list, max_length=1000)
    setErrs = serializers.DictField(child=SetErrorSerializer(), required=False,  # noqa: N815
                                    default=dict)


class GlobalRevocationSerializer(serializers.Serializer):
    sub_id = serializers.DictField()
