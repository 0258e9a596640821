"""No admin page or API endpoint answers a 500 for a malformed session id or user pk:
ours answer 404, Django's own pages do what Django does (redirect with a message)."""
from __future__ import annotations

from urllib.parse import unquote as url_unquote

import pytest
from django.contrib.admin import helpers
from django.urls import resolve, reverse

from jwt_sessions.models import Session
from tests.conftest import assert_error, bearer

pytestmark = pytest.mark.django_db(transaction=True)

BAD_USER_PKS = ["not-a-number", "1|2", "1|2|-", "99999999999999999999999", "-1", "1.5",
                "\x00", "0x1", " "]
BAD_SESSION_IDS = ["not-a-uuid", "1|2", "00000000-0000-0000-0000-00000000000g", "\x00",
                   "99999999999999999999999"]


def revoke_user_url(pk: str) -> str:
    return reverse("admin:jwt_sessions_session_revoke_user", args=[pk])


@pytest.mark.parametrize("pk", BAD_USER_PKS)
def test_revoke_user_page_with_a_malformed_pk_is_404(admin_client, pk):
    assert admin_client.get(revoke_user_url(pk)).status_code == 404
    assert admin_client.post(revoke_user_url(pk), {"post": "yes"}).status_code == 404


def test_revoke_user_page_for_an_unknown_user_is_404(admin_client, admin_user):
    assert admin_client.get(revoke_user_url(str(admin_user.pk + 1000))).status_code == 404


@pytest.mark.parametrize("session_id", BAD_SESSION_IDS)
@pytest.mark.parametrize("page", ["change", "delete", "history"])
def test_session_pages_with_a_malformed_id_never_fail(admin_client, session_id, page):
    resp = admin_client.get(reverse(f"admin:jwt_sessions_session_{page}", args=[session_id]))
    # Django's answers: "doesn't exist" (302), or no delete permission for anyone (403)
    assert resp.status_code in (302, 403, 404), resp.status_code


@pytest.mark.parametrize("action", ["revoke_sessions", "revoke_user_sessions"])
@pytest.mark.parametrize("confirm", [False, True])
def test_session_actions_with_malformed_ids_never_fail(admin_client, tokens, action, confirm):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [*BAD_SESSION_IDS,
                                                            tokens["session_id"]]}
    if confirm:
        data["post"] = "yes"
    resp = admin_client.post(reverse("admin:jwt_sessions_session_changelist"), data)
    assert resp.status_code in (200, 302), resp.status_code
    assert Session.objects.get(pk=tokens["session_id"]).is_active  # nothing half-done


@pytest.mark.parametrize("confirm", [False, True])
def test_user_action_with_malformed_pks_never_fails(admin_client, user, tokens, confirm):
    data = {"action": "revoke_jwt_sessions",
            helpers.ACTION_CHECKBOX_NAME: [*BAD_USER_PKS, str(user.pk)]}
    if confirm:
        data["post"] = "yes"
    resp = admin_client.post(reverse("admin:auth_user_changelist"), data)
    assert resp.status_code in (200, 302), resp.status_code
    assert Session.objects.get(pk=tokens["session_id"]).is_active


@pytest.mark.parametrize("query", ["?status=bogus", "?status=", "?staff=maybe",
                                   "?user__id__exact=not-a-number",
                                   "?created_at__gte=yesterday", "?o=999"])
def test_session_list_with_malformed_filters_never_fails(admin_client, tokens, query):
    resp = admin_client.get(reverse("admin:jwt_sessions_session_changelist") + query)
    assert resp.status_code in (200, 302), resp.status_code


@pytest.mark.parametrize("query", ["?device_type=%00", "?revoked_reason=a%00b", "?q=%00",
                                   "?q=alice%00", "?ip_address=%00", "?%00=1"])
@pytest.mark.parametrize("changelist", ["admin:jwt_sessions_session_changelist",
                                        "admin:auth_user_changelist"])
def test_a_nul_character_in_a_list_query_is_a_400(admin_client, tokens, query, changelist):
    """PostgreSQL cannot hold NUL in text: Django's admin would answer a 500."""
    assert admin_client.get(reverse(changelist) + query).status_code == 400


@pytest.mark.parametrize("session_id", BAD_SESSION_IDS)
def test_api_session_delete_with_a_malformed_id_is_404(api, tokens, session_id):
    resp = api.client.delete(reverse("jwt_sessions:session-detail", args=[session_id]),
                             **bearer(tokens["access"]))
    assert_error(resp, 404, "not_found")


def test_string_pks_are_read_as_the_admin_quotes_them():
    """A string pk (here Django's session key) with `|` and `/` round-trips the admin's
    URL quoting; the user model of this suite has an integer pk."""
    from django.contrib.admin.utils import quote
    from django.contrib.sessions.models import Session as DjangoSession
    from django.http import Http404
    from django.utils import timezone

    from jwt_sessions.admin import object_or_404

    row = DjangoSession.objects.create(session_key="a|b/c_d", session_data="",
                                       expire_date=timezone.now())
    assert object_or_404(DjangoSession, quote(row.pk)) == row
    link = reverse("admin:jwt_sessions_session_revoke_user", args=[quote(row.pk)])
    assert resolve(url_unquote(link)).kwargs == {"user_id": quote(row.pk)}  # as WSGI decodes
    for model, raw in ((DjangoSession, "missing"), (Session, "not-a-uuid"),
                       (Session, "1|2")):
        with pytest.raises(Http404):
            object_or_404(model, raw)
