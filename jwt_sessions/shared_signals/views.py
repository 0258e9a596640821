"""The Shared Signals endpoints: transmitter metadata, stream management, poll, the
receiver of pushed SETs, and Global Token Revocation. Thin views over `outbox`, `poll`,
`receiver` and `subjects`."""
from __future__ import annotations

import uuid
from typing import Any, cast

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..exceptions import NotFound
from ..models import RevokeReason
from ..views import JWTSessionsView
from . import events, outbox, poll, receiver, subjects
from . import settings as ssf
from .jwks import JwksUnavailable
from .models import DeliveryMethod, SsfStream, StreamStatus
from .serializers import (
    POLL_DELIVERY,
    TRANSMITTER_SUPPLIED,
    GlobalRevocationSerializer,
    PollSerializer,
    StatusSerializer,
    StreamCreateSerializer,
    StreamIdSerializer,
    StreamUpdateSerializer,
    VerificationSerializer,
)

MANAGE_PERMISSION = "jwt_sessions.manage_ssf_stream"


class CanManageStreams(BasePermission):
    """The caller holds `jwt_sessions.manage_ssf_stream` (a receiver's service account)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(MANAGE_PERMISSION))


class SharedSignalsView(JWTSessionsView):
    """Base of the endpoints a receiver calls: 404 while Shared Signals is off."""

    permission_classes = [IsAuthenticated, CanManageStreams]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if not ssf.enabled():
            raise NotFound()
        super().initial(request, *args, **kwargs)

    def url(self, name: str, *args: Any) -> str:
        return self.request.build_absolute_uri(reverse(f"jwt_sessions:{name}", args=args))


class ConfigurationView(SharedSignalsView):
    """GET -> the transmitter's metadata (SSF 1.0), for anyone."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({
            "spec_version": "1_0",
            "issuer": ssf.issuer(),
            "jwks_uri": self.url("jwks"),
            "delivery_methods_supported": [events.PUSH, events.POLL],
            "configuration_endpoint": self.url("ssf_stream"),
            "status_endpoint": self.url("ssf_status"),
            "verification_endpoint": self.url("ssf_verification"),
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
            "default_subjects": "ALL",
        })


class StreamEndpoint(SharedSignalsView):
    """Streams belong to the account that created them; anyone else's is a 404, and so
    is an id that could name no stream. Answers about a stream are never cached."""

    def stream(self, stream_id: Any) -> SsfStream:
        try:
            pk = uuid.UUID(str(stream_id))
        except ValueError:
            raise NotFound() from None
        found = SsfStream.objects.filter(pk=pk, owner_id=self.request.user.pk).first()
        if found is None:
            raise NotFound()
        return found

    def finalize_response(self, request: Request, response: Any, *args: Any,
                          **kwargs: Any) -> Any:
        add_never_cache_headers(response)
        return super().finalize_response(request, response, *args, **kwargs)

    def stream_from_query(self) -> SsfStream:
        serializer = StreamIdSerializer(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return self.stream(serializer.validated_data["stream_id"])


class StreamView(StreamEndpoint):
    """The stream configuration endpoint: POST creates, GET reads (one by `stream_id`,
    or all of the caller's), PATCH updates, PUT replaces, DELETE removes."""

    serializer_class = StreamCreateSerializer

    def describe(self, stream: SsfStream) -> dict[str, Any]:
        endpoint = (stream.endpoint_url if stream.delivery_method == DeliveryMethod.PUSH
                    else self.url("ssf_poll", stream.pk))
        answer = {
            "stream_id": str(stream.pk), "iss": ssf.issuer(), "aud": stream.audience,
            "delivery": {"method": stream.delivery_method, "endpoint_url": endpoint},
            "events_supported": events.EVENTS_SUPPORTED,
            "events_requested": stream.events_requested,
            "events_delivered": [event for event in stream.events_requested
                                 if event in events.EVENTS_SUPPORTED],
        }
        if stream.description:  # an optional member the receiver did not set is absent
            answer["description"] = stream.description
        return answer

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        stream = SsfStream(owner_id=cast(Any, request.user.pk))
        stream.audience = serializer.validated_data.get("aud", f"urn:uuid:{stream.pk}")
        self._apply(stream, serializer.validated_data, replace=True)
        return Response(self.describe(stream), status=status.HTTP_201_CREATED)

    def get(self, request: Request) -> Response:
        if "stream_id" not in request.query_params:
            streams = SsfStream.objects.filter(owner_id=request.user.pk).order_by("created_at")
            return Response([self.describe(stream) for stream in streams])
        return Response(self.describe(self.stream_from_query()))

    def patch(self, request: Request) -> Response:
        return self._update(request, replace=False)

    def put(self, request: Request) -> Response:
        return self._update(request, replace=True)

    def delete(self, request: Request) -> Response:
        self.stream_from_query().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request: Request, replace: bool) -> Response:
        serializer = StreamUpdateSerializer(data=request.data, partial=not replace)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        stream = self.stream(data["stream_id"])
        current = self.describe(stream)
        changed = [member for member in TRANSMITTER_SUPPLIED
                   if member in data and data[member] != current[member]]
        if changed:
            raise ValidationError({member: ["Set by the transmitter: it cannot be changed."]
                                   for member in changed})
        self._apply(stream, data, replace=replace)
        return Response(self.describe(stream))

    @staticmethod
    def _apply(stream: SsfStream, data: dict[str, Any], replace: bool) -> None:
        """Write the receiver-supplied members (PUT and POST: the missing ones too)."""
        delivery = data.get("delivery", POLL_DELIVERY if replace else None)
        if delivery is not None:
            stream.delivery_method = delivery["method"]
            stream.endpoint_url = delivery.get("endpoint_url", "")
            stream.authorization_header = delivery.get("authorization_header", "")
        if replace or "events_requested" in data:
            stream.events_requested = data.get("events_requested",
                                               list(events.EVENTS_SUPPORTED))
        if replace or "description" in data:
            stream.description = data.get("description", "")
        stream.save()


class StatusView(StreamEndpoint):
    """GET ?stream_id -> the stream's status; POST {stream_id, status, reason} sets it
    (a stream enabled again gets the events kept while it was paused)."""

    serializer_class = StatusSerializer

    @staticmethod
    def describe(stream: SsfStream) -> dict[str, Any]:
        answer = {"stream_id": str(stream.pk), "status": stream.status}
        if stream.status_reason:
            answer["reason"] = stream.status_reason
        return answer

    def get(self, request: Request) -> Response:
        return Response(self.describe(self.stream_from_query()))

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        stream = self.stream(serializer.validated_data["stream_id"])
        stream.status = serializer.validated_data["status"]
        stream.status_reason = serializer.validated_data.get("reason", "")
        with transaction.atomic():
            stream.save(update_fields=["status", "status_reason"])
            if stream.status == StreamStatus.DISABLED:
                outbox.pending().filter(stream=stream).delete()  # a disabled stream keeps nothing
            elif (stream.status == StreamStatus.ENABLED
                  and stream.delivery_method == DeliveryMethod.PUSH):
                outbox.push_pending(stream)
        return Response(self.describe(stream))


class VerificationView(StreamEndpoint):
    """POST {stream_id, state?} -> 204; a verification SET goes to the stream."""

    serializer_class = VerificationSerializer

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        stream = self.stream(serializer.validated_data["stream_id"])
        with transaction.atomic():
            outbox.record_verification(stream, serializer.validated_data.get("state"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PollView(StreamEndpoint):
    """POST {maxEvents, returnImmediately, ack, setErrs} -> {"sets": {jti: SET},
    "moreAvailable"} (RFC 8936)."""

    serializer_class = PollSerializer

    def post(self, request: Request, stream_id: str) -> Response:
        stream = self.stream(stream_id)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        poll.acknowledge(stream, data["ack"], data["setErrs"])
        sets, more = poll.poll(stream, data["maxEvents"], data["returnImmediately"])
        return Response({"sets": sets, "moreAvailable": more})


class ReceiveView(APIView):
    """POST a SET (`application/secevent+jwt`) -> 202 once acted on; 400 with an
    RFC 8935 error body `{"err", "description"}` when refused. The SET's signature is
    the authentication: no Authorization header is needed."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        if not ssf.enabled():
            raise NotFound()
        try:
            receiver.act_on(receiver.verify(_set_in(request)))
        except receiver.SetRefused as refused:
            return _refusal(refused.err, refused.description)
        except JwksUnavailable:
            return Response({"err": "temporarily_unavailable",
                             "description": "The transmitter's keys cannot be fetched now."},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": "30"})
        return Response(status=status.HTTP_202_ACCEPTED)


def _set_in(request: Request) -> str:
    """The body as text; one Django will not read (over DATA_UPLOAD_MAX_MEMORY_SIZE) or
    not ASCII is refused like any other body that is no SET, in JSON."""
    try:
        return request.body.decode("ascii").strip()
    except (RequestDataTooBig, UnicodeDecodeError):
        raise receiver.SetRefused("invalid_request", "The body is not a compact JWS.") from None


def _refusal(err: str, description: str) -> Response:
    return Response({"err": err, "description": description},
                    status=status.HTTP_400_BAD_REQUEST)


class GlobalTokenRevocationView(JWTSessionsView):
    """POST {"sub_id": {...}} -> 204; every session of that user ends (Global Token
    Revocation). 400 for a subject format we do not know, 404 for no such user. On
    whether or not Shared Signals is: it needs no stream."""

    permission_classes = [IsAuthenticated, CanManageStreams]
    serializer_class = GlobalRevocationSerializer

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            target = subjects.resolve(serializer.validated_data["sub_id"], None)
        except subjects.SubjectInvalid as exc:
            raise ValidationError({"sub_id": [str(exc)]}) from None
        if target is None:
            raise NotFound()
        services.revoke_user_sessions(target.user_id, RevokeReason.GLOBAL_REVOCATION)
        return Response(status=status.HTTP_204_NO_CONTENT)
