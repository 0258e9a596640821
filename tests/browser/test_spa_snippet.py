"""The single-page app recipe of docs/single-page-apps.md, as printed, in Chromium.

The page is the page's own `html` block, served on the example project's origin. A visitor
who never signed in costs no "signed-out" event, no redirect and at most one refresh (the
recipe used to loop: each load refreshed, got 401, signed out and redirected to itself); a
revoked session does sign out, once. A step-up through `reauthenticate()` costs no 401
beyond the one that asked for it, and the other tabs take the new token without a refresh.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

if os.environ.get("JWT_SESSIONS_BROWSER") != "1":
    pytest.skip("browser test: set JWT_SESSIONS_BROWSER=1", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.browser.pages import log_in, new_person  # noqa: E402
from tests.example_site import example_site  # noqa: E402

PAGE = Path(__file__).resolve().parents[2] / "docs" / "single-page-apps.md"
STEP_UP_SECONDS = 2
SETTLE_MS = 2000
# Counts what the page does, from before its first script runs.
COUNT_EVENTS = """() => {
  window.signedOutEvents = 0;
  const dispatch = EventTarget.prototype.dispatchEvent;
  EventTarget.prototype.dispatchEvent = function (event) {
    if (event.type === "signed-out") window.signedOutEvents++;
    return dispatch.call(this, event);
  };
}"""
STEP_UP = """async (password) => {
  const {client} = await import("/static/example/app.js");
  const call = () => client.fetch("/api/step-up/", {method: "POST"});
  const first = await call();
  const asked = (await first.clone().json()).code;
  await client.reauthenticate(password);
  const second = await call();
  return {first: first.status, asked, second: second.status};
}"""
WHOAMI = """async () => {
  const {client} = await import("/static/example/app.js");
  return (await client.fetch("/api/whoami/")).status;
}"""


def documented_page() -> str:
    """The first `html` block of the page, as a reader copies it."""
    block = re.search(r"^```html\n(.*?)^```$", PAGE.read_text(), re.S | re.M)
    assert block, f"no html block in {PAGE}"
    return f"<!doctype html>\n<html><body>\n{block.group(1)}</body></html>\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with example_site(tmp_path_factory.mktemp("spa"),
                      EXAMPLE_STEP_UP_SECONDS=str(STEP_UP_SECONDS)) as base:
        yield base


def open_recipe(browser, site: str):
    """A fresh browser on /spa/ (the documented block); counts refreshes and navigations."""
    page = browser.new_context(base_url=site).new_page()
    page.route("**/spa/", lambda route: route.fulfill(
        status=200, content_type="text/html", body=documented_page()))
    page.add_init_script(f"({COUNT_EVENTS})()")
    counts = {"refreshes": 0, "navigations": 0}

    def on_request(request):
        if request.url.endswith("/auth/refresh/"):
            counts["refreshes"] += 1

    def on_navigation(frame):
        if frame == page.main_frame:
            counts["navigations"] += 1

    page.on("request", on_request)
    page.on("framenavigated", on_navigation)
    page.goto("/spa/")
    return page, counts


def test_a_visitor_who_never_signed_in_causes_no_signed_out_no_redirect(site, browser):
    page, counts = open_recipe(browser, site)
    expect(page.locator("#sign-in")).to_be_visible()
    page.wait_for_timeout(SETTLE_MS)  # a loop would show by now (it took 200 ms a turn)

    assert page.evaluate("window.signedOutEvents") == 0
    assert counts["navigations"] == 1  # the visit itself: no redirect
    assert counts["refreshes"] <= 1
    expect(page.locator("#app")).to_be_hidden()
    expect(page.locator("#sign-in output")).to_have_text("")


def test_the_recipe_signs_in_and_a_revocation_signs_out_once(site, browser):
    page, counts = open_recipe(browser, site)
    page.fill("#sign-in [name=username]", "alice")
    page.fill("#sign-in [name=password]", "alice")
    page.click("#sign-in button")
    expect(page.locator("#me")).to_have_text("Signed in as alice.")

    other = new_person(browser, site, "alice")  # another device ends this one
    sessions = other.evaluate("""async () => {
      const {client} = await import("/static/example/app.js");
      return client.sessions();
    }""")
    mine = [s["id"] for s in sessions if not s["current"]]
    other.evaluate("""async (ids) => {
      const {client} = await import("/static/example/app.js");
      for (const id of ids) await client.revokeSession(id);
    }""", mine)
    page.reload()  # the recipe's next load: its token is dead, its cookie too

    expect(page.locator("#sign-in output")).to_have_text(
        "Your session has ended: please sign in again.")
    page.wait_for_timeout(SETTLE_MS)
    assert page.evaluate("window.signedOutEvents") == 1
    assert counts["navigations"] == 2  # the visit and the reload, nothing else


def test_a_step_up_through_reauthenticate_costs_no_extra_401(site, browser):
    context = browser.new_context(base_url=site)
    tab = log_in(context.new_page(), "alice")
    other_tab = context.new_page()
    other_tab.goto("/protected/")
    expect(other_tab.locator("#api-status")).to_have_text("200 OK")
    answers: list[tuple[str, int]] = []
    for page in (tab, other_tab):
        page.on("response", lambda response: answers.append(
            (response.url.split("/", 3)[3], response.status)))
    tab.wait_for_timeout((STEP_UP_SECONDS + 1) * 1000)  # the login is no longer recent

    result = tab.evaluate(STEP_UP, "alice")
    assert result == {"first": 401, "asked": "reauthentication_required", "second": 200}
    assert other_tab.evaluate(WHOAMI) == 200  # the other tab took the new token

    unauthorized = [url for url, status in answers if status == 401]
    assert unauthorized == ["api/step-up/"]  # the one that asked for the password
    assert not [url for url, _ in answers if url.startswith("auth/refresh/")]
