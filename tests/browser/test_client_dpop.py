"""The browser client with DPoP: a non-extractable WebCrypto key kept in IndexedDB signs
a proof for login, refresh and every call; the key survives a reload, and a copied
access token (without the key) is refused."""
from __future__ import annotations

import os

import pytest

if os.environ.get("JWT_SESSIONS_BROWSER") != "1":
    pytest.skip("browser test: set JWT_SESSIONS_BROWSER=1", allow_module_level=True)

CLIENT = """async () => {
  const {createClient} = await import("/static/jwt_sessions/client.js");
  const {dpopProofs} = await import("/static/jwt_sessions/dpop.js");
  window.dpop = dpopProofs();
  window.auth = createClient({baseUrl: "/auth/", dpop: window.dpop});
}"""
LOG_IN = """async () => {
  const body = await window.auth.login({username: "alice", password: "alice"});
  return {tokenType: body.token_type, access: body.access,
          jkt: await window.dpop.thumbprint()};
}"""
CALL = """async () => {
  const response = await window.auth.fetch("/api/whoami/");
  return {status: response.status, body: await response.json()};
}"""
KEY_IS_SEALED = """async () => {
  const db = await new Promise((resolve, reject) => {
    const opening = indexedDB.open("jwt_sessions.dpop", 1);
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
  const pair = await new Promise((resolve) => {
    const get = db.transaction("keys").objectStore("keys").get("current");
    get.onsuccess = () => resolve(get.result);
  });
  try {
    await crypto.subtle.exportKey("jwk", pair.privateKey);
    return {extractable: pair.privateKey.extractable, exported: true};
  } catch {
    return {extractable: pair.privateKey.extractable, exported: false};
  }
}"""
COPIED_TOKEN = """async (access) => {
  const asBearer = await fetch("/api/whoami/", {headers: {Authorization: `Bearer ${access}`}});
  const asDpop = await fetch("/api/whoami/", {headers: {Authorization: `DPoP ${access}`}});
  return [asBearer.status, (await asBearer.json()).code,
          asDpop.status, (await asDpop.json()).code,
          asDpop.headers.get("WWW-Authenticate")];
}"""


def test_the_key_survives_a_reload_and_a_copied_token_is_refused(browser, site):
    page = browser.new_context(base_url=site).new_page()
    page.goto("/login/")
    page.evaluate(CLIENT)
    login = page.evaluate(LOG_IN)
    assert login["tokenType"] == "DPoP"
    first = page.evaluate(CALL)
    assert first["status"] == 200, first
    assert page.evaluate(KEY_IS_SEALED) == {"extractable": False, "exported": False}

    page.reload()
    page.evaluate(CLIENT)
    # The same key after the reload: the access token kept in sessionStorage still
    # passes, and a refresh (forced by dropping the token) is accepted for the session.
    assert page.evaluate("async () => window.dpop.thumbprint()") == login["jkt"]
    assert page.evaluate(CALL)["status"] == 200
    page.evaluate("() => sessionStorage.clear()")
    page.reload()
    page.evaluate(CLIENT)
    after_refresh = page.evaluate(CALL)
    assert after_refresh["status"] == 200, after_refresh

    # Someone who copied the access token (a log, an extension, another machine) but
    # cannot use the key: refused as Bearer and as DPoP without a proof.
    thief = browser.new_context(base_url=site).new_page()
    thief.goto("/login/")
    bearer_status, bearer_code, dpop_status, dpop_code, challenge = thief.evaluate(
        COPIED_TOKEN, login["access"])
    assert (bearer_status, bearer_code) == (401, "token_invalid")
    assert (dpop_status, dpop_code) == (401, "invalid_dpop_proof")
    assert challenge.startswith("DPoP ")


LOST_KEY = """async () => {
  // The site's data was cleared: the access token and the key pair are gone. The
  // session's refresh cookie is still there, but this browser's new key is not the
  // session's: the refresh is refused, and the client signs out instead of throwing.
  sessionStorage.clear();
  const {createClient} = await import("/static/jwt_sessions/client.js");
  const {dpopProofs} = await import("/static/jwt_sessions/dpop.js");
  const auth = createClient({baseUrl: "/auth/",
                             dpop: dpopProofs({databaseName: "jwt_sessions.dpop-new"})});
  const codes = [];
  auth.addEventListener("signed-out", (event) => codes.push(event.detail.code));
  const response = await auth.fetch("/api/whoami/");
  return {status: response.status, signedOut: auth.isSignedOut, codes,
          token: await auth.accessToken()};
}"""


def test_a_browser_that_lost_its_key_is_signed_out_cleanly(browser, site):
    page = browser.new_context(base_url=site).new_page()
    page.goto("/login/")
    page.evaluate(CLIENT)
    assert page.evaluate(LOG_IN)["tokenType"] == "DPoP"
    page.goto("/api/whoami/")  # a page of the origin with no client of its own
    lost = page.evaluate(LOST_KEY)
    assert lost["signedOut"] is True, lost
    assert lost["codes"] == ["invalid_dpop_proof"]
    assert lost["status"] == 401 and lost["token"] is None
