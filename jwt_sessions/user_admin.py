"""The user's admin page gains their sessions: `UserSessionsAdminMixin`, which a project
puts on its own user admin, and `extend_user_admin`, which mixes it into Django's
`UserAdmin` when the project did not (see docs/admin.md)."""
from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core import checks
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .admin_guards import ReadOnlySessions, RefusesMalformedInput
from .admin_revocation import can_revoke, revoke_users_once_confirmed
from .conf import jwt_settings
from .models import Session, SessionQuerySet


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
        # Each row's label names the user: one join, not a query per session.
        return cast(SessionQuerySet, super().get_queryset(request)).active().select_related(
            "user")

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
    return revoke_users_once_confirmed(modeladmin, request, user_ids, user_ids,
                                       "revoke_jwt_sessions")


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


def check_user_admin(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """EXTEND_USER_ADMIN is on but the user admin came too late to be extended
    (registered by the app's `ready()` when the admin is installed)."""
    if not user_admin_lacks_sessions():
        return []
    return [checks.Warning(
        "The user admin does not show JWT sessions: it was registered after jwt_sessions "
        "extended it.",
        hint="Add jwt_sessions.admin.UserSessionsAdminMixin to your user admin's bases, or "
             "put 'django.contrib.admin' before 'jwt_sessions' in INSTALLED_APPS; set "
             "EXTEND_USER_ADMIN = False to go without.",
        id="jwt_sessions.W007")]
