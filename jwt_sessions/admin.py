"""The Session admin: see every session, end any of them at once (SPEC §7)."""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import RevokeReason, Session


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["user", "device_label", "ip_address", "location", "created_at",
                    "last_activity_at", "expires_at", "status"]
    list_select_related = ["user"]
    list_filter = ["device_type", "created_at", "revoked_reason"]
    search_fields = ["ip_address"]
    actions = ["revoke_sessions", "revoke_user_sessions"]
    exclude = ["refresh_token_bcrypt", "refresh_token_sha256", "previous_refresh_token_sha256",
               "access_jti"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("device"))
    def device_label(self, session: Session) -> str:
        return session.device_label

    @admin.display(description=_("status"))
    def status(self, session: Session) -> str:
        return session.status

    @admin.action(description=_("Revoke selected sessions"), permissions=["view"])
    def revoke_sessions(self, request: Any, queryset: QuerySet) -> None:
        count = services.revoke_sessions(queryset, RevokeReason.ADMIN)
        self.message_user(request, ngettext("%d session revoked.", "%d sessions revoked.",
                                            count) % count, messages.SUCCESS)

    @admin.action(description=_("Revoke all sessions of the selected sessions' users"),
                  permissions=["view"])
    def revoke_user_sessions(self, request: Any, queryset: QuerySet) -> None:
        users = queryset.values_list("user_id", flat=True).distinct()
        count = services.revoke_sessions(
            Session.objects.active().filter(user_id__in=list(users)), RevokeReason.ADMIN)
        self.message_user(request, ngettext("%d session revoked.", "%d sessions revoked.",
                                            count) % count, messages.SUCCESS)
