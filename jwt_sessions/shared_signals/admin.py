"""Shared Signals in the admin: the streams receivers configured and the outbox, to see
what was sent, what waits and what failed. Read-only: streams are the receivers' to
manage (through the stream endpoints), and an event's fate is the pusher's; the
receiver's authorization header, a secret of theirs, is never shown."""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import SsfOutboxEvent, SsfStream


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SsfStream)
class SsfStreamAdmin(ReadOnlyAdmin):
    list_display = ("audience", "delivery_method", "endpoint_url", "status", "owner",
                    "created_at")
    list_filter = ("status", "delivery_method")
    search_fields = ("audience", "endpoint_url", "description")
    exclude = ("authorization_header",)


class OutcomeFilter(admin.SimpleListFilter):
    title = _("outcome")
    parameter_name = "outcome"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("pending", _("Pending")), ("delivered", _("Delivered")),
                ("failed", _("Given up"))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        if value == "pending":
            return queryset.filter(delivered_at__isnull=True, failed_at__isnull=True)
        if value == "delivered":
            return queryset.filter(delivered_at__isnull=False)
        if value == "failed":
            return queryset.filter(failed_at__isnull=False)
        return queryset


@admin.register(SsfOutboxEvent)
class SsfOutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("jti", "stream", "created_at", "attempts", "delivered_at", "failed_at",
                    "last_error")
    list_filter = (OutcomeFilter,)
    search_fields = ("jti",)
    list_select_related = ("stream",)
