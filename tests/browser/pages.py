"""What a person does on the example project's pages, shared by the browser tests."""
from __future__ import annotations

from playwright.sync_api import Page, expect


def log_in(page: Page, username: str) -> Page:
    """Sign in on the login page (demo accounts: the password is the username) and wait
    for the protected page's first API answer."""
    page.goto("/login/")
    page.fill("#username", username)
    page.fill("#password", username)
    page.click("#login-button")
    page.wait_for_url("**/protected/")
    expect(page.locator("#api-status")).to_have_text("200 OK")
    return page


def new_person(browser, site: str, username: str) -> Page:
    """Another browser (its own cookie jar), signed in as `username`."""
    return log_in(browser.new_context(base_url=site).new_page(), username)
