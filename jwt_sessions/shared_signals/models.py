"""What Shared Signals keeps in the database: the streams receivers configured, the
outbox of SETs for them, and the SET ids this deployment has received (replay refusal)."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class StreamStatus(models.TextChoices):
    ENABLED = "enabled", _("Enabled")
    PAUSED = "paused", _("Paused")  # events are kept, and delivered once enabled
    DISABLED = "disabled", _("Disabled")  # events are not kept


class DeliveryMethod(models.TextChoices):
    PUSH = "urn:ietf:rfc:8935", _("Push (RFC 8935)")
    POLL = "urn:ietf:rfc:8936", _("Poll (RFC 8936)")


class SsfStream(models.Model):
    """One receiver's stream: where its SETs go, with which audience, and which events."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
        verbose_name=_("owner"), help_text=_("The account that manages this stream."))
    audience = models.CharField(_("audience"), max_length=500)
    delivery_method = models.CharField(_("delivery method"), max_length=40,
                                       choices=DeliveryMethod.choices)
    # An http(s) URL, checked where receivers write it (the stream endpoints).
    endpoint_url = models.CharField(_("push endpoint"), max_length=2000, blank=True,
                                    default="")
    authorization_header = models.TextField(_("authorization header"), blank=True, default="")
    events_requested = models.JSONField(_("events requested"), default=list, blank=True)
    description = models.TextField(_("description"), blank=True, default="")
    status = models.CharField(_("status"), max_length=10, choices=StreamStatus.choices,
                              default=StreamStatus.ENABLED)
    status_reason = models.TextField(_("status reason"), blank=True, default="")
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("shared signals stream")
        verbose_name_plural = _("shared signals streams")
        permissions = [("manage_ssf_stream", _("Can manage Shared Signals streams"))]

    def __str__(self) -> str:
        return f"{self.audience} ({self.get_delivery_method_display()})"


class SsfOutboxEvent(models.Model):
    """One signed SET for one stream, written in the transaction that caused it, kept
    until the receiver took it (a 202 to a push, or an acknowledged poll)."""

    stream = models.ForeignKey(SsfStream, on_delete=models.CASCADE, related_name="outbox")
    jti = models.CharField(_("SET id"), max_length=64, unique=True)
    token = models.TextField(_("signed SET"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    failed_at = models.DateTimeField(_("given up"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")

    class Meta:
        verbose_name = _("outgoing security event")
        verbose_name_plural = _("outgoing security events")
        indexes = [models.Index(fields=["delivered_at", "failed_at", "next_attempt_at"],
                                name="jwts_ssf_outbox_due")]

    def __str__(self) -> str:
        return self.jti


class SsfReceivedEvent(models.Model):
    """A SET this deployment acted on: the same `jti` from the same issuer is never
    acted on twice."""

    issuer = models.CharField(_("issuer"), max_length=500)
    jti = models.CharField(_("SET id"), max_length=200)
    received_at = models.DateTimeField(_("received"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("received security event")
        verbose_name_plural = _("received security events")
        constraints = [models.UniqueConstraint(fields=["issuer", "jti"],
                                               name="jwts_ssf_received_once")]

    def __str__(self) -> str:
        return f"{self.jti} from {self.issuer}"
