"""The Session admin is the operator's product: readable, read-only, revokes at once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from jwt_sessions import services
from jwt_sessions.models import RevokeReason, Session
from tests.conftest import UA_IPHONE, assert_error

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "admin:jwt_sessions_session_changelist"


def changelist(query: str = "") -> str:
    return reverse(CHANGELIST) + query


def act(client, action: str, sessions, confirm: bool):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(s.pk) for s in sessions]}
    if confirm:
        data["post"] = "yes"
    return client.post(changelist(), data)


def session_of(tokens: dict) -> Session:
    return Session.objects.get(pk=tokens["session_id"])


def permission(codename: str) -> Permission:
    return Permission.objects.get(codename=codename, content_type__app_label="jwt_sessions")


@pytest.fixture
def staff(make_user):
    """A staff member who may view sessions but not revoke them."""
    member = make_user("viewer", is_staff=True)
    member.user_permissions.add(permission("view_session"))
    return member


# ------------------------------------------------------------------ the list
def test_list_shows_readable_device_status_and_no_hash(admin_client, api, user):
    mac = api.login_ok(user.username)
    iphone = api.login_ok(user.username, ua=UA_IPHONE)
    services.revoke_session(iphone["session_id"], RevokeReason.LOGOUT)
    html = admin_client.get(changelist()).content.decode()
    assert "Chrome 131 on macOS" in html
    assert "Mobile Safari 17 on iOS (iPhone)" in html
    assert "jwt-status-active" in html and "jwt-status-revoked" in html
    assert "Logged out" in html
    for session in Session.objects.all():
        assert session.refresh_token_sha256 not in html
        assert session.refresh_token_bcrypt not in html
        assert session.refresh_token_sha256[:8] not in html  # not even a prefix on the list
    assert mac["refresh"] not in html


def test_list_page_query_count_does_not_grow_with_rows(admin_client, make_user, queries):
    def count() -> int:
        with queries() as q:
            assert admin_client.get(changelist()).status_code == 200
        return len(q.captured_queries)

    admin_client.get(changelist())  # warm caches (content types, permissions)
    services.issue_tokens(make_user())
    one = count()
    for _ in range(49):
        services.issue_tokens(make_user())
    some = list(Session.objects.values_list("pk", flat=True)[:10])
    services.revoke_sessions(Session.objects.filter(pk__in=some), RevokeReason.ADMIN,
                             revoked_by=make_user(is_staff=True))
    assert Session.objects.count() == 50
    assert count() == one


def test_summary_shows_counters_and_active_count(admin_client, api, user):
    tokens = api.login_ok(user.username)
    api.refresh_ok(tokens["refresh"])
    html = admin_client.get(changelist()).content.decode()
    assert 'id="jwt-sessions-summary"' in html
    assert '<td data-counter="active_sessions">1</td>' in html
    assert '<td data-counter="refreshes">1</td>' in html


def test_status_filter(admin_client, make_user):
    active = services.issue_tokens(make_user()).session_id
    revoked = services.issue_tokens(make_user()).session_id
    expired = services.issue_tokens(make_user()).session_id
    services.revoke_session(revoked)
    Session.objects.filter(pk=expired).update(expires_at=timezone.now() - timedelta(1))
    for status, expected in [("active", active), ("expired", expired), ("revoked", revoked)]:
        resp = admin_client.get(changelist(f"?status={status}"))
        assert [s.pk for s in resp.context["cl"].result_list] == [expected], status


def test_device_type_and_staff_filters(admin_client, api, make_user):
    phone_user = make_user()
    api.login_ok(phone_user.username, ua=UA_IPHONE)
    staff_member = make_user(is_staff=True)
    api.login_ok(staff_member.username)
    mobile = admin_client.get(changelist("?device_type=mobile")).context["cl"].result_list
    assert [s.user_id for s in mobile] == [phone_user.pk]
    staff = admin_client.get(changelist("?staff=yes")).context["cl"].result_list
    assert [s.user_id for s in staff] == [staff_member.pk]


@pytest.mark.parametrize("term", ["alice", "alice@example.com", "192.0.2.7"])
def test_search_by_username_email_and_ip(admin_client, api, make_user, term):
    alice = make_user("alice", email="alice@example.com")
    api.login_ok(alice.username, ip="192.0.2.7")
    api.login_ok(make_user("bob", email="bob@example.com").username, ip="192.0.2.8")
    found = admin_client.get(changelist(f"?q={term}")).context["cl"].result_list
    assert [s.user_id for s in found] == [alice.pk]


# ------------------------------------------------------------------ read-only
def test_nothing_can_be_added_changed_or_deleted(admin_client, tokens):
    session = session_of(tokens)
    change_url = reverse("admin:jwt_sessions_session_change", args=[session.pk])
    assert admin_client.get(reverse("admin:jwt_sessions_session_add")).status_code == 403
    assert admin_client.post(change_url, {"ip_address": "192.0.2.99"}).status_code == 403
    delete_url = reverse("admin:jwt_sessions_session_delete", args=[session.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    resp = act(admin_client, "delete_selected", [session], confirm=True)
    assert Session.objects.filter(pk=session.pk).exists(), resp.status_code
    session.refresh_from_db()
    assert session.ip_address != "192.0.2.99"


def test_detail_page_shows_a_fingerprint_never_the_hashes(admin_client, tokens):
    session = session_of(tokens)
    resp = admin_client.get(reverse("admin:jwt_sessions_session_change", args=[session.pk]))
    html = resp.content.decode()
    assert resp.status_code == 200
    assert f"{session.refresh_token_sha256[:8]}…" in html
    assert session.refresh_token_sha256[:9] not in html
    assert session.refresh_token_bcrypt[:20] not in html
    assert session.access_jti not in html
    assert 'name="ip_address"' not in html  # no form inputs: view only


# ------------------------------------------------------------------ revoke actions
def test_revoke_action_confirms_then_revokes_at_once(admin_client, admin_user, api, user):
    victim = api.login_ok(user.username)
    other = api.login_ok(user.username)
    session = session_of(victim)
    page = act(admin_client, "revoke_sessions", [session], confirm=False)
    assert page.status_code == 200
    assert "admin/jwt_sessions/session/revoke_confirmation.html" in [
        t.name for t in page.templates]
    assert session_of(victim).is_active  # nothing happens before confirmation
    assert api.whoami(victim["access"]).status_code == 200

    resp = act(admin_client, "revoke_sessions", [session], confirm=True)
    assert resp.status_code == 302
    session.refresh_from_db()
    assert session.revoked_reason == RevokeReason.ADMIN
    assert session.revoked_by == admin_user
    assert_error(api.whoami(victim["access"]), 401, "session_revoked")
    assert_error(api.refresh(victim["refresh"]), 401, "session_revoked")
    assert api.whoami(other["access"]).status_code == 200
    badge = admin_client.get(changelist("?status=revoked")).content.decode()
    assert f"Revoked in the admin by {admin_user}" in badge


def test_revoke_user_sessions_action_ends_every_session_of_those_users(
        admin_client, admin_user, api, make_user):
    alice, bob = make_user(), make_user()
    first = api.login_ok(alice.username)
    second = api.login_ok(alice.username, ua=UA_IPHONE)
    bobs = api.login_ok(bob.username)
    page = act(admin_client, "revoke_user_sessions", [session_of(first)], confirm=False)
    assert f"{alice}: 2 active sessions" in page.content.decode()
    assert api.whoami(second["access"]).status_code == 200

    act(admin_client, "revoke_user_sessions", [session_of(first)], confirm=True)
    for tokens in (first, second):
        assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
        assert session_of(tokens).revoked_by == admin_user
    assert api.whoami(bobs["access"]).status_code == 200


def test_staff_without_revoke_permission_sees_but_cannot_revoke(client, staff, api, user):
    tokens = api.login_ok(user.username)
    client.force_login(staff)
    resp = client.get(changelist())
    assert resp.status_code == 200
    assert "revoke_sessions" not in resp.content.decode()
    act(client, "revoke_sessions", [session_of(tokens)], confirm=True)
    revoke_url = reverse("admin:jwt_sessions_session_revoke_user", args=[user.pk])
    assert client.post(revoke_url, {"post": "yes"}).status_code == 403
    assert session_of(tokens).is_active


def test_revoke_permission_is_enough_to_revoke(client, staff, api, user):
    staff.user_permissions.add(permission("revoke_session"))
    tokens = api.login_ok(user.username)
    client.force_login(staff)
    act(client, "revoke_sessions", [session_of(tokens)], confirm=True)
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


# ------------------------------------------------------------------ the user's page
def test_user_page_lists_active_sessions_with_revoke_all_link(admin_client, api, user):
    api.login_ok(user.username, ua=UA_IPHONE)
    ended = api.login_ok(user.username)
    services.revoke_session(ended["session_id"])
    html = admin_client.get(reverse("admin:auth_user_change", args=[user.pk])).content.decode()
    assert "Mobile Safari 17 on iOS (iPhone)" in html
    assert "Chrome 131 on macOS" not in html  # only active sessions
    assert reverse("admin:jwt_sessions_session_revoke_user", args=[user.pk]) in html


def test_revoke_all_from_user_page(admin_client, admin_user, api, user):
    tokens = api.login_ok(user.username)
    revoke_url = reverse("admin:jwt_sessions_session_revoke_user", args=[user.pk])
    assert "1 active session" in admin_client.get(revoke_url).content.decode()
    assert api.whoami(tokens["access"]).status_code == 200
    resp = admin_client.post(revoke_url, {"post": "yes"})
    assert resp["Location"] == reverse("admin:auth_user_change", args=[user.pk])
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")
    assert session_of(tokens).revoked_by == admin_user


def test_user_admin_action_revokes_selected_users(admin_client, api, make_user):
    alice, bob = make_user(), make_user()
    alices, bobs = api.login_ok(alice.username), api.login_ok(bob.username)
    url = reverse("admin:auth_user_changelist")
    data = {"action": "revoke_jwt_sessions", helpers.ACTION_CHECKBOX_NAME: [str(alice.pk)]}
    page = admin_client.post(url, data)
    assert "1 active session" in page.content.decode()
    assert api.whoami(alices["access"]).status_code == 200
    admin_client.post(url, {**data, "post": "yes"})
    assert_error(api.whoami(alices["access"]), 401, "session_revoked")
    assert api.whoami(bobs["access"]).status_code == 200


def test_extend_user_admin_registers_a_subclass_and_leaves_the_original_alone():
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.contrib.auth.admin import UserAdmin

    from jwt_sessions.admin import UserSessionsAdminMixin, extend_user_admin

    site = admin.AdminSite(name="fresh")
    site.register(get_user_model(), UserAdmin)
    inlines, actions = tuple(UserAdmin.inlines), tuple(UserAdmin.actions or ())
    assert extend_user_admin(site) is True
    registered = site._registry[get_user_model()]
    assert isinstance(registered, UserSessionsAdminMixin) and isinstance(registered, UserAdmin)
    assert (tuple(UserAdmin.inlines), tuple(UserAdmin.actions or ())) == (inlines, actions)
    assert extend_user_admin(site) is False  # once
    plain = admin.AdminSite(name="plain")
    plain.register(get_user_model(), admin.ModelAdmin)
    assert extend_user_admin(plain) is False  # a custom admin chooses for itself


def test_the_test_site_uses_the_mixin():
    from django.contrib import admin
    from django.contrib.auth import get_user_model

    import tests.urls  # noqa: F401  (the site's own registration)
    from jwt_sessions.admin import UserSessionsAdminMixin

    assert isinstance(admin.site._registry[get_user_model()], UserSessionsAdminMixin)


def test_the_mixin_offers_the_action_only_to_those_who_may_revoke(client, staff, make_user):
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(staff)
    page = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "revoke_jwt_sessions" not in page
    staff.user_permissions.add(permission("revoke_session"))
    page = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "revoke_jwt_sessions" in page


def test_a_user_admin_registered_too_late_is_reported(jwt_settings):
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.contrib.auth.admin import UserAdmin

    import tests.urls  # noqa: F401  (the site's own registration, restored below)
    from jwt_sessions.user_admin import check_user_admin

    model = get_user_model()
    assert check_user_admin() == []
    original = type(admin.site._registry[model])
    admin.site.unregister(model)
    admin.site.register(model, UserAdmin)  # as an app listed after jwt_sessions would
    try:
        assert [m.id for m in check_user_admin()] == ["jwt_sessions.W007"]
        jwt_settings(EXTEND_USER_ADMIN=False)
        assert check_user_admin() == []  # the project chose to go without
    finally:
        admin.site.unregister(model)
        admin.site.register(model, original)
