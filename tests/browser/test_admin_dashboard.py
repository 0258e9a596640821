"""The admin's sessions dashboard in a real browser at 1280 px: three charts drawn, nothing
fetched from another origin, readable without scrolling sideways.

The screenshot goes to artifacts/ like the other browser tests' (a run leaves the work tree
clean); docs/images/admin-dashboard-1280.png is a copy of it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

if os.environ.get("JWT_SESSIONS_BROWSER") != "1":
    pytest.skip("browser test: set JWT_SESSIONS_BROWSER=1", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import ROOT, example_site  # noqa: E402

SCREENSHOT = "admin-dashboard-1280.png"
WIDTH = 1280


@pytest.fixture(scope="module")
def site_with_a_week(tmp_path_factory):
    db_dir = tmp_path_factory.mktemp("dashboard")
    with example_site(db_dir) as base:
        env = {key: value for key, value in os.environ.items()
               if key not in ("REDIS_URL", "DATABASE_URL")}
        env.update(DJANGO_SETTINGS_MODULE="example_project.settings",
                   EXAMPLE_DB=str(db_dir / "db.sqlite3"))
        subprocess.run([sys.executable, "manage.py", "shell", "-c",
                        "from tests.browser.dashboard_data import seed; seed()"],
                       cwd=ROOT, env=env, check=True, timeout=120)
        yield base


def test_dashboard_at_1280_px(site_with_a_week, browser, artifacts):
    page = browser.new_context(base_url=site_with_a_week,
                               viewport={"width": WIDTH, "height": 900}).new_page()
    foreign = []
    page.on("request", lambda request: foreign.append(request.url)
            if not request.url.startswith(site_with_a_week) else None)
    page.goto("/admin/login/?next=/admin/jwt_sessions/session/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin")
    page.click("input[type=submit]")
    page.click("#jwt-sessions-dashboard-link")
    page.wait_for_url("**/admin/jwt_sessions/session/dashboard/")
    for chart in ("#jwt-chart-opened", "#jwt-chart-device-types", "#jwt-chart-revocations"):
        svg = page.locator(f"{chart} svg")
        expect(svg).to_be_visible()
        assert svg.bounding_box()["width"] > 300
    expect(page.locator("#jwt-chart-revocations")).to_contain_text("Refresh token reuse")
    assert page.locator("#jwt-chart-opened rect").count() == 7 * 24
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    assert foreign == []
    page.screenshot(path=str(artifacts / SCREENSHOT), full_page=True)
