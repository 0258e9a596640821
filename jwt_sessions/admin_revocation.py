"""Revoking from the admin, shared by the Session admin and the user admin: who may, the
"are you sure?" page, and the revocation itself (through `services.revoke_sessions`,
exactly as a logout, recording reason `admin` and the admin who did it)."""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from . import services
from .models import RevokeReason, Session

CONFIRMATION_TEMPLATE = "admin/jwt_sessions/session/revoke_confirmation.html"


def can_revoke(request: HttpRequest) -> bool:
    opts = Session._meta
    return request.user.has_perm(f"{opts.app_label}.revoke_session")


def revoke_users_sessions(request: HttpRequest, user_ids: Any) -> int:
    """End every active session of these users, as the admin `request.user`."""
    sessions = Session.objects.active().filter(user_id__in=user_ids)
    return services.revoke_sessions(sessions, RevokeReason.ADMIN, revoked_by=request.user)


def report_revoked(modeladmin: admin.ModelAdmin, request: HttpRequest, count: int) -> None:
    modeladmin.message_user(request, ngettext(
        "%(count)d session revoked.", "%(count)d sessions revoked.", count) % {"count": count},
        messages.SUCCESS)


def confirmation_page(modeladmin: admin.ModelAdmin, request: HttpRequest, *, title: str,
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


def users_with_active_counts(user_ids: Any) -> QuerySet:
    active = Q(jwt_sessions__revoked_at__isnull=True,
               jwt_sessions__expires_at__gt=timezone.now())
    return get_user_model()._default_manager.filter(pk__in=user_ids).annotate(
        active_sessions=Count("jwt_sessions", filter=active)).order_by("pk")


def confirmed(request: HttpRequest) -> bool:
    return request.POST.get("post") == "yes"


def revoke_users_once_confirmed(modeladmin: Any, request: HttpRequest, user_ids: list[Any],
                                 selected: list[Any], action: str) -> Any:
    """Revoke every active session of `user_ids` once the operator confirmed; until
    then, the confirmation page (the same from the session list and the user list)."""
    if confirmed(request):
        report_revoked(modeladmin, request, revoke_users_sessions(request, user_ids))
        return None
    return confirmation_page(
        modeladmin, request, title=gettext("Revoke all sessions of users"),
        question=gettext("Revoke every active session of these users? They are signed out "
                         "on all their devices at once."),
        users=users_with_active_counts(user_ids), selected=selected, action=action)


def user_page(site: admin.AdminSite, user: Any) -> str:
    opts = user._meta
    if user.__class__ in site._registry:
        return reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_change",
                       args=[quote(user.pk)])
    return reverse(f"{site.name}:jwt_sessions_session_changelist")
