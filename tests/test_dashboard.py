"""The admin's sessions dashboard: the right figures, drawn as plain SVG with nothing
fetched, for those who may view sessions, in a number of queries that does not grow with
the table."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from jwt_sessions import charts, dashboard
from jwt_sessions.models import RevokeReason, Session

pytestmark = pytest.mark.django_db

DASHBOARD = "admin:jwt_sessions_session_dashboard"


def add_sessions(user, count: int, **fields) -> None:
    """`count` rows at once (bulk_create), spread over the last week."""
    now = timezone.now()
    device_type = fields.pop("device_type", None)
    Session.objects.bulk_create([Session(
        id=uuid.uuid4(), user=user, refresh_token_bcrypt="-",
        refresh_token_sha256=uuid.uuid4().hex + uuid.uuid4().hex, access_jti=uuid.uuid4().hex,
        created_at=now - timedelta(minutes=(i * 37) % (7 * 24 * 60)),
        expires_at=now + timedelta(days=1),
        device_type=device_type or ("pc", "mobile", "tablet")[i % 3],
        **fields) for i in range(count)], batch_size=1000)


def page(client) -> str:
    resp = client.get(reverse(DASHBOARD))
    assert resp.status_code == 200
    return resp.content.decode()


# ------------------------------------------------------------------ figures
def test_figures_count_opened_active_and_revoked(user, clock):
    now = timezone.now()
    add_sessions(user, 3)
    add_sessions(user, 2, device_type="bot")
    old = Session.objects.order_by("created_at").first()
    Session.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=8))
    ended = Session.objects.filter(device_type="bot")
    ended.update(revoked_at=now, revoked_reason=RevokeReason.REUSE_DETECTED)
    Session.objects.filter(device_type="tablet").update(revoked_at=now,
                                                        revoked_reason=RevokeReason.LOGOUT)
    figures = dashboard.count_figures()
    assert len(figures.opened_per_hour) == 7 * 24
    assert figures.opened == 4  # one row is older than the week
    assert figures.active_by_device_type == {"pc": 1, "mobile": 1}
    assert figures.revoked_by_reason == {"reuse_detected": 2, "logout": 1}
    assert figures.reuse_detected == 2


def test_opened_per_hour_puts_each_login_in_its_hour(user, clock):
    add_sessions(user, 1)  # created now
    Session.objects.update(created_at=timezone.now() - timedelta(hours=5))
    figures = dashboard.count_figures()
    counts = [count for _, count in figures.opened_per_hour]
    assert counts[-6] == 1 and sum(counts) == 1


def test_opened_per_hour_in_the_sites_time_zone(user, settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+05:30: local hours are not UTC hours
    add_sessions(user, 1)
    hours = dashboard.count_figures().opened_per_hour
    assert all(hour.minute == 0 for hour, _ in hours)
    assert sum(count for _, count in hours) == 1


# ------------------------------------------------------------------ the page
def test_page_draws_three_svg_charts_and_no_script(admin_client, user):
    add_sessions(user, 30)
    html = page(admin_client)
    board = html.split('id="jwt-dashboard"')[1].split("<!-- END SVGs -->")[0]
    assert board.count('role="img"') == 3
    assert "<script" not in board
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert 'data-figure="opened"><strong>30<' in html


def test_a_revocation_reason_and_device_label_are_escaped(admin_client, user):
    add_sessions(user, 1, revoked_at=timezone.now(), revoked_reason="<b>x</b>")
    html = page(admin_client)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_the_list_links_to_the_dashboard(admin_client):
    html = admin_client.get(reverse("admin:jwt_sessions_session_changelist")).content.decode()
    assert reverse(DASHBOARD) in html


def test_viewers_see_it_others_do_not(client, make_user):
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(
        codename="view_session", content_type__app_label="jwt_sessions"))
    stranger = make_user(is_staff=True)
    client.force_login(stranger)
    assert client.get(reverse(DASHBOARD)).status_code == 403
    client.force_login(viewer)
    assert client.get(reverse(DASHBOARD)).status_code == 200


def test_anonymous_is_sent_to_the_admin_login(client):
    resp = client.get(reverse(DASHBOARD))
    assert resp.status_code == 302 and "/login/" in resp["Location"]


@pytest.mark.parametrize("few, many", [(10, 10_000)])
def test_query_count_does_not_grow_with_the_table(admin_client, user, queries, few, many):
    add_sessions(user, few)
    page(admin_client)  # warm caches (content types, permissions)
    with queries() as with_few:
        page(admin_client)
    add_sessions(user, many - few)
    with queries() as with_many:
        page(admin_client)
    assert Session.objects.count() == many
    assert len(with_many) == len(with_few), [q["sql"] for q in with_many.captured_queries]
    aggregates = [q["sql"] for q in with_many.captured_queries
                  if "jwt_sessions_session" in q["sql"]]
    assert len(aggregates) == 3 and all("GROUP BY" in sql for sql in aggregates)


# ------------------------------------------------------------------ charts
def test_charts_escape_labels_and_scale_to_the_largest_value():
    svg = charts.bar_chart([charts.Bar("<i>a</i>", 50), charts.Bar("b", 100)], "t")
    assert "<i>" not in svg
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[1] == pytest.approx(2 * widths[0])


def test_empty_charts_say_so():
    assert "No data" in charts.bar_chart([], "t")
    assert "<rect" in charts.column_chart([charts.Column(0, "t")] * 3, "t")


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20),
                                                (200, 200), (201, 500), (9_999, 10_000)])
def test_axis_top_is_a_round_number(value, ceiling):
    assert charts._nice_ceiling(value) == ceiling
