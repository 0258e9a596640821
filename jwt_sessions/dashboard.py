"""The admin's session dashboard: sign-ins per hour over the last week, active sessions by
device type, revocations (reuse detections among them) by reason.

Three aggregate queries whatever the table's size (GROUP BY in the database, at most one
row per hour, device type or reason), drawn as plain SVG by `charts`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext

from .charts import Bar, Column, bar_chart, column_chart
from .models import DeviceType, RevokeReason, Session

TEMPLATE = "admin/jwt_sessions/session/dashboard.html"
PERIOD = timedelta(days=7)
HOUR = timedelta(hours=1)
REUSE_COLOUR, REVOKED_COLOUR = "#ba2121", "#79aec8"  # the admin's error red, light blue


@dataclass(frozen=True)
class Figures:
    """What the dashboard shows, already counted by the database."""

    since: datetime
    opened_per_hour: list[tuple[datetime, int]]
    active_by_device_type: dict[str, int]
    revoked_by_reason: dict[str, int]

    @property
    def opened(self) -> int:
        return sum(count for _, count in self.opened_per_hour)

    @property
    def active(self) -> int:
        return sum(self.active_by_device_type.values())

    @property
    def revoked(self) -> int:
        return sum(self.revoked_by_reason.values())

    @property
    def reuse_detected(self) -> int:
        return self.revoked_by_reason.get(RevokeReason.REUSE_DETECTED, 0)


def _this_hour(now: datetime) -> datetime:
    return timezone.localtime(now).replace(minute=0, second=0, microsecond=0)


def count_figures(now: datetime | None = None) -> Figures:
    """The dashboard's figures: three GROUP BY queries, each answering a few rows."""
    now = now or timezone.now()
    last_hour = _this_hour(now)
    since = last_hour - PERIOD + HOUR
    per_hour = dict(Session.objects.filter(created_at__gte=since)
                    .annotate(hour=TruncHour("created_at")).order_by()
                    .values("hour").annotate(count=Count("pk")).values_list("hour", "count"))
    start = since.astimezone(dt_timezone.utc)  # real hours, across summer time too
    hours = [timezone.localtime(start + i * HOUR) for i in range(int(PERIOD / HOUR))]
    by_hour = {timezone.localtime(hour): count for hour, count in per_hour.items()}
    return Figures(
        since=since,
        opened_per_hour=[(hour, by_hour.get(hour, 0)) for hour in hours],
        active_by_device_type=_grouped(Session.objects.active(), "device_type"),
        revoked_by_reason=_grouped(Session.objects.filter(revoked_at__gte=since),
                                   "revoked_reason"))


def _grouped(queryset: Any, field: str) -> dict[str, int]:
    rows = queryset.order_by().values(field).annotate(count=Count("pk")).values_list(
        field, "count")
    return {key: count for key, count in rows if count}


def opened_chart(figures: Figures) -> SafeString:
    columns = []
    for hour, count in figures.opened_per_hour:
        title = ngettext("%(time)s: %(count)d session opened",
                         "%(time)s: %(count)d sessions opened", count) % {
            "time": date_format(hour, "D j M, H:i"), "count": count}
        tick = date_format(hour, "D j M") if hour.hour == 0 else ""
        columns.append(Column(count, title, tick))
    return column_chart(columns, gettext("Sessions opened per hour, last 7 days"))


def device_type_chart(figures: Figures) -> SafeString:
    labels = dict(DeviceType.choices)
    bars = [Bar(str(labels.get(kind, kind)), count) for kind, count in sorted(
        figures.active_by_device_type.items(), key=lambda item: -item[1])]
    return bar_chart(bars, gettext("Active sessions by device type"))


def revocation_chart(figures: Figures) -> SafeString:
    labels = dict(RevokeReason.choices)
    bars = [Bar(str(labels.get(reason, reason or "-")), count,
                REUSE_COLOUR if reason == RevokeReason.REUSE_DETECTED else REVOKED_COLOUR)
            for reason, count in sorted(figures.revoked_by_reason.items(),
                                        key=lambda item: -item[1])]
    return bar_chart(bars, gettext("Revocations by reason, last 7 days"))


def dashboard_view(model_admin: Any, request: HttpRequest) -> TemplateResponse:
    """The page, for whoever may view sessions in the admin."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    figures = count_figures()
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Sessions dashboard"),
        "opts": Session._meta,
        "figures": figures,
        "opened_chart": opened_chart(figures),
        "device_type_chart": device_type_chart(figures),
        "revocation_chart": revocation_chart(figures),
    }
    return TemplateResponse(request, TEMPLATE, context)
