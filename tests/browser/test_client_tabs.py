"""The browser client across tabs: one session, many tabs, short-lived access tokens.

Three tabs of one browser share alice's session (the refresh cookie) and call the API
every 200 ms while access tokens live 5 s: no call may fail, no refresh token may be
reused, and the server must see one refresh per expiry, not one per tab per expiry.
Then the same with one tab's network cut for 2 s, and a revocation from another browser
that must sign out every tab. JWT_SESSIONS_BROWSER_SECONDS shortens the 60 s runs for a
quick local try; CI runs the full length.
"""
from __future__ import annotations

import json
import os
import time

import pytest

if os.environ.get("JWT_SESSIONS_BROWSER") != "1":
    pytest.skip("browser test: set JWT_SESSIONS_BROWSER=1", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.browser.pages import log_in, new_person  # noqa: E402
from tests.example_site import example_site  # noqa: E402

ACCESS_SECONDS = 5
RUN_SECONDS = int(os.environ.get("JWT_SESSIONS_BROWSER_SECONDS", "60"))
EXPECTED_REFRESHES = RUN_SECONDS / ACCESS_SECONDS
CALL_EVERY_MS = 200
CUT_SECONDS = 2
TABS = 3

START_CALLING = """async (interval) => {
  const {client} = await import("/static/example/app.js");
  const log = window.apiLog = {ok: 0, failures: [], networkErrors: [], signedOutAt: null,
                               inFlight: 0};
  client.onSignedOut(() => { log.signedOutAt ??= Date.now(); });
  window.apiTimer = setInterval(async () => {
    const at = Date.now();
    log.inFlight++;
    try {
      const response = await client.fetch("/api/whoami/");
      if (response.ok) log.ok++;
      else log.failures.push({at, status: response.status, code: (await response.json()).code});
    } catch (error) {
      log.networkErrors.push(at);
    } finally {
      log.inFlight--;
    }
  }, interval);
}"""
STOP_CALLING = """async () => {
  clearInterval(window.apiTimer);
  while (window.apiLog.inFlight) await new Promise((resolve) => setTimeout(resolve, 20));
  return window.apiLog;
}"""
TOKEN_EXPIRES_AT = """() => {
  const key = Object.keys(sessionStorage).find((name) => name.startsWith("jwt_sessions:"));
  return key ? JSON.parse(sessionStorage.getItem(key)).expiresAt : null;
}"""


@pytest.fixture(scope="module")
def tabs_site(tmp_path_factory):
    with example_site(tmp_path_factory.mktemp("tabs"),
                      EXAMPLE_ACCESS_SECONDS=str(ACCESS_SECONDS)) as base:
        yield base


@pytest.fixture(scope="module")
def admin(tabs_site, browser):
    """The admin's session list at 1280 px: its counters are the server's own count."""
    page = browser.new_context(base_url=tabs_site,
                               viewport={"width": 1280, "height": 800}).new_page()
    page.goto("/admin/login/?next=/admin/jwt_sessions/session/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/jwt_sessions/session/")
    return page


def server_counters(admin) -> dict[str, int]:
    admin.reload()
    cells = admin.locator("[data-counter]")
    return {cells.nth(i).get_attribute("data-counter"): int(cells.nth(i).inner_text())
            for i in range(cells.count())}


def open_tabs(browser, tabs_site, count: int = TABS) -> list:
    """One browser (one cookie jar), logged in as alice in the first tab, `count` tabs."""
    context = browser.new_context(base_url=tabs_site)
    tabs = [log_in(context.new_page(), "alice")]
    for _ in range(count - 1):
        tab = context.new_page()
        tab.goto("/protected/")
        tabs.append(tab)
    for tab in tabs:
        expect(tab.locator("#api-status")).to_have_text("200 OK")
    return tabs


def count_refreshes(tabs) -> list:
    answers: list[int] = []
    for tab in tabs:
        tab.on("response", lambda response: answers.append(response.status)
               if response.url.endswith("/auth/refresh/") else None)
    return answers


def run_tabs(tabs, seconds: float, during=None) -> list[dict]:
    for tab in tabs:
        tab.evaluate(START_CALLING, CALL_EVERY_MS)
    started = time.monotonic()
    if during:
        during()
    # wait_for_timeout, not time.sleep: Playwright's routes and events run meanwhile.
    tabs[0].wait_for_timeout(max(0, seconds - (time.monotonic() - started)) * 1000)
    return [tab.evaluate(STOP_CALLING) for tab in tabs]


def assert_one_refresh_per_expiry(before: dict, after: dict) -> int:
    refreshes = after["refreshes"] - before["refreshes"]
    assert after["reuse_detected"] == before["reuse_detected"]
    assert abs(refreshes - EXPECTED_REFRESHES) <= 3, (refreshes, EXPECTED_REFRESHES)
    return refreshes


def report(name: str, **numbers) -> None:
    print(f"\n[{name}] " + ", ".join(f"{key}={value}" for key, value in numbers.items()))


def test_three_tabs_share_one_refresh_per_expiry(tabs_site, browser, admin):
    tabs = open_tabs(browser, tabs_site)
    refresh_answers = count_refreshes(tabs)
    before = server_counters(admin)
    logs = run_tabs(tabs, RUN_SECONDS)
    after = server_counters(admin)

    assert [log["failures"] for log in logs] == [[]] * TABS
    assert [log["networkErrors"] for log in logs] == [[]] * TABS
    assert all(log["ok"] >= RUN_SECONDS * 1000 / CALL_EVERY_MS * 0.8 for log in logs), logs
    assert set(refresh_answers) <= {200}, refresh_answers
    refreshes = assert_one_refresh_per_expiry(before, after)
    report("three tabs", seconds=RUN_SECONDS, calls=sum(log["ok"] for log in logs),
           failed=0, server_refreshes=refreshes, reused=0)


def test_a_tab_cut_off_for_two_seconds_costs_no_failure_elsewhere(tabs_site, browser, admin):
    tabs = open_tabs(browser, tabs_site)
    cut_tab = tabs[1]
    refresh_answers = count_refreshes(tabs)
    before = server_counters(admin)
    window: dict[str, float] = {}

    def cut_when_a_refresh_is_due() -> None:
        """Cut the tab's network just before its token is due for renewal, for 2 s."""
        tabs[0].wait_for_timeout(ACCESS_SECONDS * 1000)
        while cut_tab.evaluate(TOKEN_EXPIRES_AT) - cut_tab.evaluate("Date.now()") > 800:
            tabs[0].wait_for_timeout(50)
        window["start"] = cut_tab.evaluate("Date.now()")
        cut_tab.route("**/*", lambda route: route.abort("internetdisconnected"))
        tabs[0].wait_for_timeout(CUT_SECONDS * 1000)
        cut_tab.unroute("**/*")
        window["end"] = cut_tab.evaluate("Date.now()")

    logs = run_tabs(tabs, RUN_SECONDS, during=cut_when_a_refresh_is_due)
    after = server_counters(admin)

    assert [log["failures"] for log in logs] == [[]] * TABS
    for tab_log, tab in zip(logs, tabs):
        if tab is cut_tab:
            assert tab_log["networkErrors"], "the cut did not cut"
            assert all(window["start"] - 50 <= at <= window["end"] + 50
                       for at in tab_log["networkErrors"]), (window, tab_log["networkErrors"])
        else:
            assert tab_log["networkErrors"] == []
    assert set(refresh_answers) <= {200}, refresh_answers
    refreshes = assert_one_refresh_per_expiry(before, after)
    report("network cut", seconds=RUN_SECONDS, calls=sum(log["ok"] for log in logs),
           failed=0, offline_calls_in_cut_tab=len(logs[1]["networkErrors"]),
           server_refreshes=refreshes, reused=0)


def test_revocation_from_another_browser_signs_out_every_tab(tabs_site, browser, artifacts):
    tabs = open_tabs(browser, tabs_site)
    session_id = json.loads(tabs[0].locator("#api-body").inner_text())["session_id"]
    for tab in tabs:
        tab.evaluate(START_CALLING, CALL_EVERY_MS)

    other = new_person(browser, tabs_site, "alice")
    other.goto("/devices/")
    row = other.locator(f"tr[data-session-id='{session_id}']")
    expect(row).to_be_visible()
    other.screenshot(path=str(artifacts / "devices.png"), full_page=True)
    with other.expect_response(lambda r: r.request.method == "DELETE") as revoked:
        row.get_by_role("button", name="Revoke").click()
    assert revoked.value.status == 204
    revoked_at = other.evaluate("Date.now()")

    latencies = []
    for tab in tabs:
        expect(tab.locator("#signed-out")).to_be_visible(timeout=2000 + CALL_EVERY_MS)
        expect(tab.locator("#signed-out")).to_have_attribute("data-code", "session_revoked")
        signed_out_at = tab.evaluate("window.apiLog.signedOutAt")
        latencies.append(signed_out_at - revoked_at)
    logs = [tab.evaluate(STOP_CALLING) for tab in tabs]
    assert max(latencies) <= 2000 + CALL_EVERY_MS, latencies
    # A call meets the revocation (session_revoked), or a renewal due at that moment does
    # and the call goes out without a token (not_authenticated): never anything else.
    codes = {failure["code"] for log in logs for failure in log["failures"]}
    assert codes and codes <= {"session_revoked", "not_authenticated"}
    report("sign-out", latencies_ms=latencies)


def test_the_admin_list_fits_1280_px(tabs_site, browser, admin, artifacts):
    open_tabs(browser, tabs_site, count=1)
    admin.reload()
    expect(admin.locator("#result_list")).to_contain_text("Revoked by its user")
    admin.screenshot(path=str(artifacts / "admin-sessions-1280.png"), full_page=True)
    results = admin.locator("#changelist .results")
    widths = results.evaluate("(element) => [element.scrollWidth, element.clientWidth]")
    assert widths[0] <= widths[1], widths
    for column in ("column-expires", "column-status_badge"):
        expect(admin.locator(f"#result_list th.{column}")).to_be_in_viewport(ratio=1)
    admin.screenshot(path=str(artifacts / "admin-sessions-1280.png"), full_page=True)


def test_logged_out_protected_page_offers_a_login_link(tabs_site, browser):
    """A visitor who never signed in is told so, and is not "signed out" of anything."""
    page = browser.new_context(base_url=tabs_site).new_page()
    page.goto("/protected/")
    expect(page.locator("#api-status")).to_have_text("401 not_authenticated")
    expect(page.locator("#not-signed-in")).to_contain_text("You are not signed in.")
    expect(page.locator("#signed-out")).to_be_hidden()
    page.click("#login-link")
    page.wait_for_url("**/login/?next=/protected/")
