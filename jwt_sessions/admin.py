"""The Session admin: see every session, end any of them at once.

Nothing here is editable and nothing can be added or deleted: a session only ever ends
by revocation, which goes through `services.revoke_sessions` exactly as a logout does
(database, then Redis), recording reason `admin` and the admin who did it.
Revoking needs the `jwt_sessions.revoke_session` permission (superusers have it).

The user's admin page gains its sessions through `UserSessionsAdminMixin`
(`jwt_sessions.user_admin`, importable from here as before); the guards every admin of
ours shares are in `jwt_sessions.admin_guards`.
"""
from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import dashboard, services, stats
from .admin_guards import ReadOnlySessions, RefusesMalformedInput, object_or_404, parse_pk
from .admin_revocation import (
    can_revoke,
    confirmation_page,
    confirmed,
    report_revoked,
    revoke_users_once_confirmed,
    revoke_users_sessions,
    user_page,
    users_with_active_counts,
)
from .models import RevokeReason, Session, SessionQuerySet, SessionStatus
from .user_admin import (
    ActiveSessionInline,
    UserSessionsAdminMixin,
    extend_user_admin,
    revoke_jwt_sessions,
    user_admin_lacks_sessions,
)

__all__ = ["SessionAdmin", "StatusFilter", "StaffUserFilter", "UserSessionsAdminMixin",
           "ActiveSessionInline", "extend_user_admin", "revoke_jwt_sessions",
           "user_admin_lacks_sessions", "object_or_404", "parse_pk", "short_time"]

FINGERPRINT_LENGTH = 8


class StatusFilter(admin.SimpleListFilter):
    """Active / expired / revoked: the question an operator asks first."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return SessionStatus.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value in SessionStatus.values:
            return cast(SessionQuerySet, queryset).with_status(SessionStatus(value))
        return queryset


class StaffUserFilter(admin.SimpleListFilter):
    """Sessions of staff users (or not): the accounts whose theft hurts most.

    A filter class rather than the `user__is_staff` path, which Django 4.2's admin only
    accepts for fields it can see in `list_filter` at class level.
    """

    title = _("user is staff")
    parameter_name = "staff"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(user__is_staff=self.value() == "yes")
        return queryset


def _user_has_field(name: str) -> bool:
    return any(f.name == name for f in get_user_model()._meta.get_fields())


STATUS_STYLES = {SessionStatus.ACTIVE: "#2e7d32", SessionStatus.EXPIRED: "#757575",
                 SessionStatus.REVOKED: "#c62828"}


def short_time(value: Any) -> str:
    """ "Dec 2, 14:05" this year, "Jan 1 2027" in another; the full time on hover."""
    if value is None:
        return "-"
    local = timezone.localtime(value)
    pattern = "M j, H:i" if local.year == timezone.localtime().year else "M j Y"
    return format_html('<time datetime="{}" title="{}" style="white-space:nowrap">{}</time>',
                       value.isoformat(), date_format(local, "DATETIME_FORMAT"),
                       date_format(local, pattern))


@admin.register(Session)
class SessionAdmin(RefusesMalformedInput, ReadOnlySessions, admin.ModelAdmin):
    # Compact columns, so that the list fits 1280 px beside the admin's two sidebars.
    list_display = ["user", "device_label", "client_address", "last_active", "expires",
                    "status_badge"]
    list_select_related = ["user", "revoked_by"]
    list_per_page = 50
    ordering = ["-last_activity_at"]
    actions = ["revoke_sessions", "revoke_user_sessions"]
    change_list_template = "admin/jwt_sessions/session/change_list.html"
    fieldsets = [
        (None, {"fields": ["user", "status_badge", "device_label", "token_fingerprint"]}),
        (_("Client"), {"fields": ["user_agent", "browser", "os", "device", "device_type",
                                  "ip_address", "location"]}),
        (_("New device check"), {"fields": ["novelty", "device_family", "country",
                                            "network"]}),
        (_("Lifetime"), {"fields": ["created_at", "last_activity_at", "expires_at",
                                    "absolute_expires_at"]}),
        (_("Authentication"), {"fields": ["auth_time", "amr", "dpop_bound",
                                            "dpop_key_fingerprint"]}),
        (_("Revocation"), {"fields": ["revoked_at", "revoked_reason", "revoked_by"]}),
    ]
    readonly_fields = ["user", "status_badge", "device_label", "token_fingerprint",
                       "user_agent", "browser", "os", "device", "device_type", "ip_address",
                       "location", "created_at", "last_activity_at", "expires_at",
                       "absolute_expires_at", "auth_time", "amr", "dpop_bound",
                       "dpop_key_fingerprint", "revoked_at", "revoked_reason", "revoked_by",
                       "novelty", "device_family", "country", "network"]

    # ------------------------------------------------------------ read-only
    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return can_revoke(request)

    # ------------------------------------------------------------ list
    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        filters: list[Any] = [StatusFilter, "device_type", "created_at", "revoked_reason"]
        if _user_has_field("is_staff"):
            filters.append(StaffUserFilter)
        return filters

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        model = get_user_model()
        fields = [f"user__{model.USERNAME_FIELD}"]
        email = getattr(model, "EMAIL_FIELD", "email")
        if email != model.USERNAME_FIELD and _user_has_field(email):
            fields.append(f"user__{email}")
        return [*fields, "ip_address"]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        summary = {"counters": stats.snapshot(),
                   "active_sessions": Session.objects.active().count()}
        return super().changelist_view(request, {**(extra_context or {}),
                                                 "jwt_sessions_summary": summary})

    @admin.display(description=_("device"))
    def device_label(self, session: Session) -> str:
        return session.device_label

    @admin.display(description=_("address"), ordering="ip_address")
    def client_address(self, session: Session) -> str:
        """The IP address, and under it the location when GeoIP knows it."""
        if not session.location:
            return session.ip_address or "-"
        return format_html('{}<br><small class="jwt-location">{}</small>',
                           session.ip_address or "-", session.location)

    @admin.display(description=_("last active"), ordering="last_activity_at")
    def last_active(self, session: Session) -> str:
        """Last activity, and under it when the session was created."""
        since = format_html(gettext("since {time}"), time=short_time(session.created_at))
        return format_html('{}<br><small class="jwt-created">{}</small>',
                           short_time(session.last_activity_at), since)

    @admin.display(description=_("expires"), ordering="expires_at")
    def expires(self, session: Session) -> str:
        return short_time(session.expires_at)

    @admin.display(description=_("status"), ordering="revoked_at")
    def status_badge(self, session: Session) -> str:
        """The status, and under it why it was revoked and whether a DPoP key binds it.

        One column rather than three keeps the list inside 1280 px beside both sidebars.
        """
        status = session.status
        notes = []
        if status == SessionStatus.REVOKED:
            reason = session.get_revoked_reason_display()
            if session.revoked_by_id is not None:
                reason = gettext("%(reason)s by %(user)s") % {
                    "reason": reason, "user": session.revoked_by}
            notes.append(format_html('<small class="jwt-status-reason">{}</small>', reason))
        if session.dpop_bound:
            notes.append(format_html('<small class="jwt-dpop-bound">{}</small>',
                                     gettext("bound to a DPoP key")))
        return format_html(
            '<span class="jwt-status jwt-status-{}" style="color:#fff;background:{};'
            'padding:1px 6px;border-radius:8px;white-space:nowrap">{}</span>{}',
            status.value, STATUS_STYLES[status], status.label,
            format_html_join("", "<br>{}", ((note,) for note in notes)))

    @admin.display(description=_("refresh token fingerprint"))
    def token_fingerprint(self, session: Session) -> str:
        """A short prefix of the SHA-256: enough to match log lines, useless to an attacker."""
        return f"{session.refresh_token_sha256[:FINGERPRINT_LENGTH]}…"

    @admin.display(boolean=True, description=_("DPoP"))
    def dpop_bound(self, session: Session) -> bool:
        return session.dpop_bound

    @admin.display(description=_("DPoP key"))
    def dpop_key_fingerprint(self, session: Session) -> str:
        """The bound key's thumbprint, shortened like the token's fingerprint."""
        return f"{session.dpop_jkt[:FINGERPRINT_LENGTH]}…" if session.dpop_jkt else "-"

    # ------------------------------------------------------------ actions
    @admin.action(description=_("Revoke selected sessions"), permissions=["revoke"])
    def revoke_sessions(self, request: HttpRequest, queryset: QuerySet) -> Any:
        if confirmed(request):
            count = services.revoke_sessions(queryset, RevokeReason.ADMIN,
                                             revoked_by=request.user)
            report_revoked(self, request, count)
            return None
        sessions = queryset.select_related("user")
        return confirmation_page(
            self, request, title=gettext("Revoke sessions"),
            question=gettext("Revoke these sessions? Their tokens stop working at once."),
            sessions=sessions, selected=[s.pk for s in sessions], action="revoke_sessions")

    @admin.action(description=_("Revoke all sessions of the selected sessions' users"),
                  permissions=["revoke"])
    def revoke_user_sessions(self, request: HttpRequest, queryset: QuerySet) -> Any:
        user_ids = list(queryset.values_list("user_id", flat=True).distinct())
        return revoke_users_once_confirmed(self, request, user_ids,
                                           list(queryset.values_list("pk", flat=True)),
                                           "revoke_user_sessions")

    # ------------------------------------------------------------ per-user view
    def get_urls(self) -> list[Any]:
        return [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view),
                 name=f"{self.opts.app_label}_{self.opts.model_name}_dashboard"),
            path("revoke-user/<str:user_id>/",
                 self.admin_site.admin_view(self.revoke_user_view),
                 name=f"{self.opts.app_label}_{self.opts.model_name}_revoke_user"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        return dashboard.dashboard_view(self, request)

    def revoke_user_view(self, request: HttpRequest, user_id: str) -> HttpResponse:
        """GET: confirm; POST: revoke every session of one user, back to their page."""
        if not can_revoke(request):
            raise PermissionDenied
        user = object_or_404(get_user_model(), user_id)
        if request.method == "POST" and confirmed(request):
            report_revoked(self, request, revoke_users_sessions(request, [user.pk]))
            return HttpResponseRedirect(user_page(self.admin_site, user))
        return confirmation_page(
            self, request, title=gettext("Revoke all sessions of %(user)s") % {"user": user},
            question=gettext("Revoke every active session of this user? They are signed "
                             "out on all their devices at once."),
            users=users_with_active_counts([user.pk]))




from .shared_signals import admin as _shared_signals_admin  # noqa: E402, F401  (registers it)
