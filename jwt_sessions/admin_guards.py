"""Guards for any model admin of jwt_sessions: input Django's admin would answer with a
500 (a pk that cannot be one, a NUL character) is refused, and sessions are never
edited by hand."""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import BadRequest, ObjectDoesNotExist, ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.utils.translation import gettext


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


class ReadOnlySessions:
    """Sessions are never added, edited or deleted by hand: they end by revocation
    (deleting a row would leave its tokens alive in Redis)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
