"""A real browser, a (virtual) passkey: the example project's allauth-powered path.

Someone signs up through django-allauth's headless API, confirms their password, adds a
passkey (Chromium's virtual WebAuthn authenticator, driven through the DevTools
protocol), then opens the vault, a view guarded by `authenticated_with("hwk")`: the
first call is refused with an RFC 9470 challenge, the page steps up with the passkey
(allauth's WebAuthn reauthentication), refreshes and is let in. The site and the browser
come from conftest.py.
"""
from __future__ import annotations

import json
import os

import pytest

if os.environ.get("JWT_SESSIONS_BROWSER") != "1":
    pytest.skip("browser test: set JWT_SESSIONS_BROWSER=1", allow_module_level=True)
pytest.importorskip("allauth.headless")

from playwright.sync_api import expect  # noqa: E402

PASSWORD = "a-passkey-demo-pa55word"
AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                 "hasUserVerification": True, "isUserVerified": True,
                 "automaticPresenceSimulation": True}


def test_a_passkey_step_up_opens_the_vault(site, browser, artifacts):
    # WebAuthn wants a domain for its relying party id, never an IP address.
    base = site.replace("//127.0.0.1:", "//localhost:")
    context = browser.new_context(base_url=base)
    page = context.new_page()
    devtools = context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    authenticator = devtools.send("WebAuthn.addVirtualAuthenticator",
                                  {"options": AUTHENTICATOR})["authenticatorId"]
    vault_calls = []
    page.on("response", lambda response: vault_calls.append(response.status)
            if response.url.endswith("/api/vault/") else None)

    page.goto("/passkey/")
    page.fill("#signup-username", "pat")
    page.fill("#signup-password", PASSWORD)
    page.click("#signup-button")
    expect(page.locator("#passkey-form")).to_be_visible()
    page.fill("#confirm-password", PASSWORD)
    page.click("#add-passkey")
    expect(page.locator("#vault")).to_be_visible()
    (credential,) = devtools.send("WebAuthn.getCredentials",
                                  {"authenticatorId": authenticator})["credentials"]
    assert credential["isResidentCredential"] is True

    page.click("#open-vault")
    expect(page.locator("#vault-status")).to_have_text("200 OK")
    body = json.loads(page.locator("#vault-body").inner_text())
    assert body == {"secret": "the vault is open", "amr": ["hwk"]}
    assert vault_calls == [401, 200]  # refused, stepped up with the passkey, let in
    (used,) = devtools.send("WebAuthn.getCredentials",
                            {"authenticatorId": authenticator})["credentials"]
    assert used["signCount"] > credential["signCount"]
    page.screenshot(path=str(artifacts / "passkey-vault.png"), full_page=True)
    context.close()
