"""The durable record of every login: one `Session` row per device."""
from __future__ import annotations

import uuid
from typing import cast

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DeviceType(models.TextChoices):
    MOBILE = "mobile", _("Mobile")
    TABLET = "tablet", _("Tablet")
    PC = "pc", _("Computer")
    BOT = "bot", _("Bot")
    OTHER = "other", _("Other")


class RevokeReason(models.TextChoices):
    """Why a session ended; written once here, used everywhere."""

    LOGOUT = "logout", _("Logged out")
    LOGOUT_ALL = "logout_all", _("Logged out everywhere")
    USER = "user", _("Revoked by its user")
    ADMIN = "admin", _("Revoked in the admin")
    API = "api", _("Revoked through the Python API")
    PASSWORD_CHANGED = "password_changed", _("Password changed")
    USER_DEACTIVATED = "user_deactivated", _("User deactivated")
    REUSE_DETECTED = "reuse_detected", _("Refresh token reuse detected")
    MAX_SESSIONS = "max_sessions", _("Too many sessions")
    SHARED_SIGNAL = "shared_signal", _("Ended by another service (Shared Signals)")
    GLOBAL_REVOCATION = "global_revocation", _("Global token revocation")


class SessionStatus(models.TextChoices):
    """Where a session stands: the one name for it in the model, the admin and the docs."""

    ACTIVE = "active", _("Active")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


class SessionQuerySet(models.QuerySet):
    def active(self) -> SessionQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())

    def expired(self) -> SessionQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__lte=timezone.now())

    def revoked(self) -> SessionQuerySet:
        return self.filter(revoked_at__isnull=False)

    def with_status(self, status: SessionStatus) -> SessionQuerySet:
        by_status = {SessionStatus.ACTIVE: self.active, SessionStatus.EXPIRED: self.expired,
                     SessionStatus.REVOKED: self.revoked}
        return by_status[SessionStatus(status)]()

    def for_user(self, user) -> SessionQuerySet:
        return self.filter(user=user)

    def by_id(self, session_id) -> Session | None:
        """One row by primary key, or None (no ORDER BY: it is a unique lookup)."""
        return cast("Session | None", self.filter(pk=session_id).order_by().first())


class Session(models.Model):
    """A login on one device.

    The refresh token itself is never stored: only its SHA-256 (the lookup key, current
    and previous for rotation and reuse detection) and a bcrypt hash of the per-session
    secret it carries (checked whenever Redis cannot vouch for the token).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jwt_sessions",
        verbose_name=_("user"),
    )
    refresh_token_bcrypt = models.CharField(_("refresh secret (bcrypt)"), max_length=80)
    refresh_token_sha256 = models.CharField(
        _("refresh token (SHA-256)"), max_length=64, unique=True)
    previous_refresh_token_sha256 = models.CharField(
        _("previous refresh token (SHA-256)"), max_length=64, blank=True, default="")
    rotated_at = models.DateTimeField(_("rotated at"), null=True, blank=True)
    access_jti = models.CharField(_("latest access token id"), max_length=64)
    # A keyed digest of the session secret: a forged refresh token is told from a genuine
    # one without bcrypt (the key is derived from SECRET_KEY, so the row alone tells a
    # database reader nothing).
    secret_check = models.CharField(_("refresh secret check"), max_length=64, blank=True,
                                    default="")
    # A digest of the user's password hash when the session was issued, as Django binds its
    # own sessions: once the password changes, however it changed, refresh is refused.
    auth_binding = models.CharField(_("credentials binding"), max_length=64, blank=True,
                                    default="")
    auth_time = models.DateTimeField(_("last authenticated"), default=timezone.now,
                                     help_text=_("When the user last proved who they are "
                                                 "(login or reauthentication)."))
    amr = models.JSONField(_("authentication methods"), default=list, blank=True)
    # The RFC 7638 thumbprint of the DPoP key the session is bound to ("": a bearer
    # session): its refresh and access tokens then work only with proofs by that key.
    dpop_jkt = models.CharField(_("DPoP key thumbprint"), max_length=64, blank=True,
                                default="")
    # The refresh token a bearer session had when a refresh bound it to a DPoP key. Its
    # holders (the client and maybe a thief) had no key: if it comes back, one of them is
    # a thief who may have bound the session to their own key, and the session ends.
    bearer_refresh_token_sha256 = models.CharField(
        _("refresh token before the DPoP binding (SHA-256)"), max_length=64, blank=True,
        default="")
    user_agent = models.TextField(_("user agent"), blank=True, default="")
    browser = models.CharField(_("browser"), max_length=100, blank=True, default="")
    os = models.CharField(_("operating system"), max_length=100, blank=True, default="")
    device = models.CharField(_("device"), max_length=100, blank=True, default="")
    device_type = models.CharField(
        _("device type"), max_length=10, choices=DeviceType.choices, default=DeviceType.OTHER)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    # null, not "": the API answers `location: null` when GeoIP is not configured.
    location = models.CharField(_("location"), max_length=200, null=True, blank=True)  # noqa: DJ001
    # What a new-device check compares (see new_devices.py): the device without versions,
    # the country, the network (/24 or /64); and what this login had that was new.
    device_family = models.CharField(_("device family"), max_length=200, blank=True,
                                     default="")
    country = models.CharField(_("country"), max_length=200, blank=True, default="")
    network = models.CharField(_("network"), max_length=50, blank=True, default="")
    novelty = models.JSONField(_("new at login"), default=list, blank=True,
                               help_text=_("What this login had that the user's recent "
                                           "sessions did not: device, country, network."))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    absolute_expires_at = models.DateTimeField(_("ends at the latest"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_reason = models.CharField(
        _("revocation reason"), max_length=32, blank=True, default="",
        choices=RevokeReason.choices)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("revoked by"),
        help_text=_("The admin user who revoked this session, if revoked in the admin."))

    objects = SessionQuerySet.as_manager()

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
        ordering = ["-last_activity_at"]
        permissions = [("revoke_session", _("Can revoke sessions")),
                       ("introspect_session", _("Can introspect tokens"))]
        indexes = [
            models.Index(fields=["user", "revoked_at", "expires_at"], name="jwts_user_active"),
            models.Index(fields=["expires_at"], name="jwts_expires"),
            models.Index(fields=["revoked_at"], name="jwts_revoked"),
            # A login's new-device check (the user's latest sessions) and the dashboard
            # (sessions opened per hour) read by creation time.
            models.Index(fields=["user", "-created_at"], name="jwts_user_created"),
            models.Index(fields=["created_at"], name="jwts_created"),
        ]

    def __str__(self) -> str:
        """"Mobile Safari 17 on iOS (iPhone) — alice": the device and whose it is."""
        return f"{self.device_label} — {self.user.get_username()}"

    @property
    def device_label(self) -> str:
        """"Chrome 131 on macOS", "Mobile Safari on iOS (iPhone)": what a person recognises."""
        label = self.browser or str(_("Unknown browser"))
        if self.os:
            label = f"{label} on {self.os}"
        if self.device and self.device not in ("Other", "Generic Desktop"):
            label = f"{label} ({self.device})"
        return label

    @property
    def is_new_device(self) -> bool:
        """The login came from a device, country or network the user's recent sessions
        had not used."""
        return bool(self.novelty)

    @property
    def dpop_bound(self) -> bool:
        """Whether its tokens work only with DPoP proofs by one key (the key's
        thumbprint itself is shown to nobody who does not need it)."""
        return bool(self.dpop_jkt)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return not self.is_revoked and not self.is_expired

    @property
    def status(self) -> SessionStatus:
        if self.is_revoked:
            return SessionStatus.REVOKED
        return SessionStatus.EXPIRED if self.is_expired else SessionStatus.ACTIVE


# Shared Signals' models live in their own package; imported here so Django finds them.
from .shared_signals.models import SsfOutboxEvent, SsfReceivedEvent, SsfStream  # noqa: E402, F401
