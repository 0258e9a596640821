"""Input of the stream-management endpoints: SSF 1.0 bodies, checked field by field."""
from __future__ import annotations

from typing import Any

from django.core.validators import URLValidator
from rest_framework import serializers

from .events import POLL, PUSH
from .models import StreamStatus


class DeliverySerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=[PUSH, POLL])
    endpoint_url = serializers.URLField(required=False, max_length=2000,
                                        validators=[URLValidator(schemes=["http", "https"])])
    authorization_header = serializers.CharField(required=False, max_length=4000,
                                                 allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["method"] == PUSH and not attrs.get("endpoint_url"):
            raise serializers.ValidationError(
                {"endpoint_url": "A push stream needs the receiver's endpoint_url."})
        if attrs["method"] == POLL:  # the transmitter names the poll endpoint
            attrs.pop("endpoint_url", None)
        return attrs


class StreamSerializer(serializers.Serializer):
    """A stream's configuration as a receiver writes it (`aud`: the audience its SETs
    carry, by default the stream's own URN)."""

    delivery = DeliverySerializer()
    # Any event URIs: the stream delivers those of them this transmitter supports.
    events_requested = serializers.ListField(child=serializers.CharField(max_length=300),
                                             required=False, max_length=50)
    description = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    aud = serializers.CharField(required=False, max_length=500)


class StreamIdSerializer(serializers.Serializer):
    stream_id = serializers.UUIDField()


class StreamUpdateSerializer(StreamIdSerializer, StreamSerializer):
    pass


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
