"""The Session admin: see every session, end any of them at once.

Nothing here is editable and nothing can be added or deleted: a session only ever ends
by revocation, which goes through `services.revoke_sessions` exactly as a logout does
(database, then Redis), recording reason `admin` and the admin who did it.
Revoking needs the `jwt_sessions.revoke_session` permission (superusers have it).

The user's admin page gains its sessions through `UserSessionsAdminMixin`, which a
project puts on its own user admin; `extend_user_admin` registers that for Django's
`UserAdmin` when the project did not (see docs/admin.md).
"""
from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import (
    BadRequest,
    ObjectDoesNotExist,
    PermissionDenied,
    ValidationError,
)
from django.db.models import Count, Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import dashboard, services, stats
from .conf import jwt_settings
from .models import RevokeReason, Session, SessionQuerySet, SessionStatus

CONFIRMATION_TEMPLATE = "admin/jwt_sessions/session/revoke_confirmation.html"
FINGERPRINT_LENGTH = 8


def can_revoke(request: HttpRequest) -> bool:
    opts = Session._meta
    return request.user.has_perm(f"{opts.app_label}.revoke_session")


def revoke_users_sessions(request: HttpRequest, user_ids: Any) -> int:
    """End every active session of these users, as the admin `request.user`."""
    sessions = Session.objects.active().filter(user_id__in=user_ids)
    return services.revoke_sessions(sessions, RevokeReason.ADMIN, revoked_by=request.user)


def _report(modeladmin: admin.ModelAdmin, request: HttpRequest, count: int) -> None:
    modeladmin.message_user(request, ngettext(
        "%(count)d session revoked.", "%(count)d sessions revoked.", count) % {"count": count},
        messages.SUCCESS)


def _confirmation(modeladmin: admin.ModelAdmin, request: HttpRequest, *, title: str,
                  question: str, sessions: Any = None, users: Any = None,
                  selected: Any = None, action: str | None = None) -> TemplateResponse:
    """The "are you sure?" page of a bulk revocation; its form posts back `post=yes`."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "sessions": sessions,
        "users": users,
        "selected": selected or [],
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
        "session_opts": Session._meta,
    }
    return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)


def _users_with_active_counts(user_ids: Any) -> QuerySet:
    active = Q(jwt_sessions__revoked_at__isnull=True,
               jwt_sessions__expires_at__gt=timezone.now())
    return get_user_model()._default_manager.filter(pk__in=user_ids).annotate(
        active_sessions=Count("jwt_sessions", filter=active)).order_by("pk")


def _confirmed(request: HttpRequest) -> bool:
    return request.POST.get("post") == "yes"


def parse_pk(model: type[Model], raw: str) -> Any:
    """`raw` as a primary key of `model`; ValidationError if it cannot be one (a word
    for an integer pk, a number beyond the column's range, a malformed UUID)."""
    field = model._meta.pk
    value = field.to_python(raw)
    field.run_validators(value)
    # No database stores a wider integer; Django before 5.0 sets no range for SQLite.
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValidationError("out of range")
    return value


def object_or_404(model: type[Model], raw: str) -> Any:
    """The row whose pk `raw` (as quoted in an admin URL) names, else 404, never a 500."""
    try:
        pk = parse_pk(model, unquote(raw))
    except ValidationError:
        raise Http404 from None
    try:
        return model._default_manager.get(pk=pk)
    except ObjectDoesNotExist:
        raise Http404 from None


class RefusesMalformedInput:
    """A model admin mixin for input Django's admin would answer with a 500: an action
    posted with an id that cannot be a pk (a tampered form) is refused as a whole with a
    message; a list filter or search with a NUL character (which PostgreSQL text cannot
    hold) is a 400."""

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        if any("\x00" in key or "\x00" in value
               for key, values in request.GET.lists() for value in values):
            raise BadRequest("A NUL character in the query.")
        return super().changelist_view(request, extra_context)  # type: ignore[misc]

    def response_action(self, request: HttpRequest, queryset: QuerySet, *args: Any,
                        **kwargs: Any) -> Any:
        model = self.model  # type: ignore[attr-defined]
        for raw in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                parse_pk(model, raw)
            except ValidationError:
                self.message_user(  # type: ignore[attr-defined]
                    request, gettext("Some selected items are not valid; nothing was done."),
                    messages.ERROR)
                return HttpResponseRedirect(request.get_full_path())
        return super().response_action(  # type: ignore[misc]
            request, queryset, *args, **kwargs)


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


class ReadOnlySessions:
    """Sessions are never added, edited or deleted by hand: they end by revocation
    (deleting a row would leave its tokens alive in Redis)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
        (_("Lifetime"), {"fields": ["created_at", "last_activity_at", "expires_at",
                                    "absolute_expires_at"]}),
        (_("Revocation"), {"fields": ["revoked_at", "revoked_reason", "revoked_by"]}),
    ]
    readonly_fields = ["user", "status_badge", "device_label", "token_fingerprint",
                       "user_agent", "browser", "os", "device", "device_type", "ip_address",
                       "location", "created_at", "last_activity_at", "expires_at",
                       "absolute_expires_at", "revoked_at", "revoked_reason", "revoked_by"]

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
        status = session.status
        detail = ""
        if status == SessionStatus.REVOKED:
            detail = session.get_revoked_reason_display()
            if session.revoked_by_id is not None:
                detail = gettext("%(reason)s by %(user)s") % {
                    "reason": detail, "user": session.revoked_by}
        return format_html(
            '<span class="jwt-status jwt-status-{}" style="color:#fff;background:{};'
            'padding:1px 6px;border-radius:8px;white-space:nowrap">{}</span>{}',
            status.value, STATUS_STYLES[status], status.label,
            format_html('<br><small class="jwt-status-reason">{}</small>', detail) if detail
            else "")

    @admin.display(description=_("refresh token fingerprint"))
    def token_fingerprint(self, session: Session) -> str:
        """A short prefix of the SHA-256: enough to match log lines, useless to an attacker."""
        return f"{session.refresh_token_sha256[:FINGERPRINT_LENGTH]}…"

    # ------------------------------------------------------------ actions
    @admin.action(description=_("Revoke selected sessions"), permissions=["revoke"])
    def revoke_sessions(self, request: HttpRequest, queryset: QuerySet) -> Any:
        if _confirmed(request):
            count = services.revoke_sessions(queryset, RevokeReason.ADMIN,
                                             revoked_by=request.user)
            _report(self, request, count)
            return None
        sessions = queryset.select_related("user")
        return _confirmation(
            self, request, title=gettext("Revoke sessions"),
            question=gettext("Revoke these sessions? Their tokens stop working at once."),
            sessions=sessions, selected=[s.pk for s in sessions], action="revoke_sessions")

    @admin.action(description=_("Revoke all sessions of the selected sessions' users"),
                  permissions=["revoke"])
    def revoke_user_sessions(self, request: HttpRequest, queryset: QuerySet) -> Any:
        user_ids = list(queryset.values_list("user_id", flat=True).distinct())
        return _revoke_users_once_confirmed(self, request, user_ids,
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
        if request.method == "POST" and _confirmed(request):
            _report(self, request, revoke_users_sessions(request, [user.pk]))
            return HttpResponseRedirect(_user_page(self.admin_site, user))
        return _confirmation(
            self, request, title=gettext("Revoke all sessions of %(user)s") % {"user": user},
            question=gettext("Revoke every active session of this user? They are signed "
                             "out on all their devices at once."),
            users=_users_with_active_counts([user.pk]))


def _user_page(site: admin.AdminSite, user: Any) -> str:
    opts = user._meta
    if user.__class__ in site._registry:
        return reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_change",
                       args=[quote(user.pk)])
    return reverse(f"{site.name}:jwt_sessions_session_changelist")


# ------------------------------------------------------------ the user's admin page
class ActiveSessionInline(ReadOnlySessions, admin.TabularInline):
    """The user's active sessions on their change page, with a "revoke all" link."""

    model = Session
    fk_name = "user"
    extra = 0
    can_delete = False
    show_change_link = True
    template = "admin/jwt_sessions/session/user_sessions_inline.html"
    fields = ("device_label", "ip_address", "location", "created_at", "last_activity_at",
              "expires_at")
    readonly_fields = fields
    verbose_name = _("active session")
    verbose_name_plural = _("active sessions")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return cast(SessionQuerySet, super().get_queryset(request)).active()

    @admin.display(description=_("device"))
    def device_label(self, session: Session) -> str:
        return session.device_label


@admin.action(description=_("Revoke all JWT sessions of the selected users"))
def revoke_jwt_sessions(modeladmin: admin.ModelAdmin, request: HttpRequest,
                        queryset: QuerySet) -> Any:
    """User admin action: same confirmation and effect as `revoke_user_sessions`."""
    if not can_revoke(request):
        modeladmin.message_user(request, gettext("You may not revoke sessions."),
                                messages.ERROR)
        return None
    user_ids = list(queryset.values_list("pk", flat=True))
    return _revoke_users_once_confirmed(modeladmin, request, user_ids, user_ids,
                                        "revoke_jwt_sessions")


def _revoke_users_once_confirmed(modeladmin: Any, request: HttpRequest, user_ids: list[Any],
                                 selected: list[Any], action: str) -> Any:
    """Revoke every active session of `user_ids` once the operator confirmed; until
    then, the confirmation page (the same from the session list and the user list)."""
    if _confirmed(request):
        _report(modeladmin, request, revoke_users_sessions(request, user_ids))
        return None
    return _confirmation(
        modeladmin, request, title=gettext("Revoke all sessions of users"),
        question=gettext("Revoke every active session of these users? They are signed out "
                         "on all their devices at once."),
        users=_users_with_active_counts(user_ids), selected=selected, action=action)


class UserSessionsAdminMixin(RefusesMalformedInput):
    """Put before your user admin's base class to give it the user's sessions:

        class UserAdmin(UserSessionsAdminMixin, django.contrib.auth.admin.UserAdmin): ...

    The change page gains the **Active sessions** inline with a "Revoke all sessions"
    button, the list the action "Revoke all JWT sessions of the selected users" (offered
    to those who may revoke). Works on any `ModelAdmin` of the user model.
    """

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        inlines = list(super().get_inlines(request, obj))  # type: ignore[misc]
        if obj is not None and ActiveSessionInline not in inlines:
            inlines.append(ActiveSessionInline)
        return inlines

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        enabled = self.actions is not None and IS_POPUP_VAR not in request.GET  # type: ignore[attr-defined]
        if enabled and can_revoke(request):
            action = self.get_action(revoke_jwt_sessions)  # type: ignore[attr-defined]
            actions[action[1]] = action
        return actions


def extend_user_admin(site: admin.AdminSite = admin.site) -> bool:
    """Register the user model's admin again with `UserSessionsAdminMixin` mixed in.

    Only when it is Django's `UserAdmin` or a subclass and lacks the mixin (a custom
    admin may not want the sessions: it adds the mixin itself). Django's own way to
    change another app's admin (unregister, register a subclass): the registered class
    is left as it was. Called once by the app's `ready()`, after the admin modules of
    every app have been imported; `EXTEND_USER_ADMIN = False` turns it off.
    """
    model = get_user_model()
    current = site._registry.get(model)
    if not isinstance(current, UserAdmin) or isinstance(current, UserSessionsAdminMixin):
        return False
    cls = type(current)
    extended = type(cls.__name__, (UserSessionsAdminMixin, cls),
                    {"__module__": cls.__module__, "__doc__": cls.__doc__})
    site.unregister(model)
    site.register(model, extended)
    return True


def user_admin_lacks_sessions(site: admin.AdminSite = admin.site) -> bool:
    """A `UserAdmin` that `extend_user_admin` could not reach (registered too late)."""
    current = site._registry.get(get_user_model())
    return (jwt_settings.EXTEND_USER_ADMIN and isinstance(current, UserAdmin)
            and not isinstance(current, UserSessionsAdminMixin))
