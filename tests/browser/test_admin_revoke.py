"""A real browser against the example project, as a person would use it.

An admin logs in to the admin, opens the session list and revokes alice's session with
the action (through its confirmation page); alice's next API call with her old token
gets 401. Runs when JWT_SESSIONS_BROWSER=1 (CI sets it); needs the `playwright` package
and Debian's chromium at /usr/bin/chromium (Playwright never downloads a browser here).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

if os.environ.get("JWT_SESSIONS_BROWSER") != "1":
    pytest.skip("browser test: set JWT_SESSIONS_BROWSER=1", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                   timeout=120)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The README's commands: migrate, createdemo, runserver (SQLite + embedded Redis)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(DJANGO_SETTINGS_MODULE="example_project.settings", DEBUG="1",
               EXAMPLE_DB=str(tmp_path_factory.mktemp("example") / "db.sqlite3"))
    manage(env, "migrate", "-v0")
    manage(env, "createdemo")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                urllib.request.urlopen(f"{base}/login/", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the example project did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_admin_revokes_a_session_and_the_old_token_stops_working(site, browser):
    alice = browser.new_context(base_url=site).new_page()
    alice.goto("/login/")
    alice.fill("#username", "alice")
    alice.fill("#password", "alice")
    alice.click("#login-button")
    alice.wait_for_url("**/protected/")
    expect(alice.locator("#api-status")).to_have_text("200 OK")
    me = json.loads(alice.locator("#api-body").inner_text())
    old_access = alice.evaluate("sessionStorage.getItem('access')")
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
    ARTIFACTS.mkdir(exist_ok=True)
    admin.screenshot(path=str(ARTIFACTS / "admin-revoke.png"), full_page=True)

    alice.click("#call-api")
    expect(alice.locator("#api-status")).to_have_text("401 session_revoked")
    answer = alice.request.get("/api/whoami/",
                               headers={"Authorization": f"Bearer {old_access}"})
    assert answer.status == 401
    assert answer.json()["code"] == "session_revoked"


def log_in(browser, site, username: str):
    page = browser.new_context(base_url=site).new_page()
    page.goto("/login/")
    page.fill("#username", username)
    page.fill("#password", username)
    page.click("#login-button")
    page.wait_for_url("**/protected/")
    expect(page.locator("#api-status")).to_have_text("200 OK")
    return page


def test_user_revokes_another_device_from_your_devices(site, browser):
    laptop, phone = log_in(browser, site, "alice"), log_in(browser, site, "alice")
    phone_session = json.loads(phone.locator("#api-body").inner_text())["session_id"]
    laptop.goto("/devices/")
    row = laptop.locator(f"tr[data-session-id='{phone_session}']")
    expect(row).to_be_visible()
    expect(laptop.locator("#devices tbody")).to_contain_text("this device")
    ARTIFACTS.mkdir(exist_ok=True)
    laptop.screenshot(path=str(ARTIFACTS / "your-devices.png"), full_page=True)
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_have_count(0)
    phone.click("#call-api")
    expect(phone.locator("#api-status")).to_have_text("401 session_revoked")
    laptop.goto("/protected/")
    expect(laptop.locator("#api-status")).to_have_text("200 OK")
