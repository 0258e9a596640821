"""A real browser against the example project, as a person would use it.

An admin logs in to the admin, opens the session list and revokes alice's session with
the action (through its confirmation page); alice's next API call with her old token
gets 401. The site and the browser come from conftest.py.
"""
from __future__ import annotations

import json
import os

import pytest

if os.environ.get("JWT_SESSIONS_BROWSER") != "1":
    pytest.skip("browser test: set JWT_SESSIONS_BROWSER=1", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.browser.pages import new_person  # noqa: E402

ACCESS_TOKEN = "import('/static/example/app.js').then((app) => app.client.accessToken())"


def test_admin_revokes_a_session_and_the_old_token_stops_working(site, browser, artifacts):
    alice = new_person(browser, site, "alice")
    me = json.loads(alice.locator("#api-body").inner_text())
    old_access = alice.evaluate(ACCESS_TOKEN)
    assert me["username"] == "alice" and old_access

    admin = browser.new_context(base_url=site,
                                viewport={"width": 1800, "height": 900}).new_page()
    admin.goto("/admin/login/?next=/admin/jwt_sessions/session/")
    admin.fill("#id_username", "admin")
    admin.fill("#id_password", "admin")
    admin.click("input[type=submit]")
    admin.wait_for_url("**/admin/jwt_sessions/session/")
    expect(admin.locator("#result_list")).to_contain_text("alice")
    admin.check(f"input[name=_selected_action][value='{me['session_id']}']")
    admin.select_option("select[name=action]", "revoke_sessions")
    admin.click("button[name=index]")
    expect(admin.locator("body.jwt-sessions-revoke-confirmation")).to_be_visible()
    expect(admin.locator(".jwt-sessions-to-revoke")).to_contain_text("alice")
    admin.click("input[value='Yes, revoke']")
    expect(admin.locator(".messagelist")).to_contain_text("1 session revoked.")
    expect(admin.locator("#result_list")).to_contain_text("Revoked in the admin by admin")
    admin.screenshot(path=str(artifacts / "admin-revoke.png"), full_page=True)

    alice.click("#call-api")
    expect(alice.locator("#api-status")).to_have_text("401 session_revoked")
    answer = alice.request.get("/api/whoami/",
                               headers={"Authorization": f"Bearer {old_access}"})
    assert answer.status == 401
    assert answer.json()["code"] == "session_revoked"


def test_user_revokes_another_device_from_your_devices(site, browser, artifacts):
    laptop, phone = new_person(browser, site, "alice"), new_person(browser, site, "alice")
    phone_session = json.loads(phone.locator("#api-body").inner_text())["session_id"]
    laptop.goto("/devices/")
    row = laptop.locator(f"tr[data-session-id='{phone_session}']")
    expect(row).to_be_visible()
    expect(laptop.locator("#devices tbody")).to_contain_text("this device")
    laptop.screenshot(path=str(artifacts / "your-devices.png"), full_page=True)
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_have_count(0)
    phone.click("#call-api")
    expect(phone.locator("#api-status")).to_have_text("401 session_revoked")
    laptop.goto("/protected/")
    expect(laptop.locator("#api-status")).to_have_text("200 OK")


def test_devices_page_shows_signed_out_within_a_second_of_a_revocation(site, browser):
    """The devices page keeps a WebSocket open; revoking that device from another browser
    closes it (4401) and the page says "signed out" at once, with no API call of its own."""
    laptop, phone = new_person(browser, site, "alice"), new_person(browser, site, "alice")
    phone_session = json.loads(phone.locator("#api-body").inner_text())["session_id"]
    phone.goto("/devices/")
    status = phone.locator("#session-status")
    expect(status).to_have_attribute("data-state", "live")
    phone.evaluate("""() => new MutationObserver(() => {
        if (document.getElementById('session-status').dataset.state === 'signed-out')
            window.signedOutAt = Date.now();
    }).observe(document.getElementById('session-status'), {attributes: true})""")
    laptop.goto("/devices/")
    with laptop.expect_response(lambda r: r.request.method == "DELETE") as revoked:
        laptop.locator(f"tr[data-session-id='{phone_session}']").get_by_role(
            "button", name="Revoke").click()
    assert revoked.value.status == 204
    revoked_at = laptop.evaluate("Date.now()")
    expect(status).to_have_attribute("data-state", "signed-out", timeout=1000)
    assert phone.evaluate("window.signedOutAt") - revoked_at <= 1000
