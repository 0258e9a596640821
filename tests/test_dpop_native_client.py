"""A third-party DPoP client (requests-oauth2client's DPoPKey and DPoPToken), unchanged,
against a live server this test starts: login -> call -> refresh -> call, with and
without server nonces."""
from __future__ import annotations

import pytest
import requests

from tests.conftest import PASSWORD

oauth2 = pytest.importorskip("requests_oauth2client")

pytestmark = pytest.mark.django_db(transaction=True)


def token_request(url: str, key, body: dict) -> requests.Response:
    """POST to login or refresh with a proof of `key`; one retry with the server's nonce
    when it asks for one (as the RFC's clients do at a token endpoint)."""
    resp = requests.post(url, json=body, headers={"DPoP": str(key.proof("POST", url))},
                         timeout=10)
    if resp.status_code == 401 and resp.json()["code"] == "use_dpop_nonce":
        nonce = resp.headers["DPoP-Nonce"]
        resp = requests.post(url, json=body, timeout=10,
                             headers={"DPoP": str(key.proof("POST", url, nonce=nonce))})
    return resp


def as_dpop_token(body: dict, key):
    assert body["token_type"] == "DPoP", body
    return oauth2.DPoPToken(body["access"], _dpop_key=key, refresh_token=body["refresh"])


@pytest.mark.parametrize("nonces", [False, True])
def test_login_call_refresh_call_with_a_standard_client(live_server, user, jwt_settings,
                                                        settings, nonces):
    jwt_settings(DPOP={"NONCE": nonces})
    # The project's views give the nonce with a refusal through our exception handler.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "EXCEPTION_HANDLER": "jwt_sessions.exceptions.exception_handler"}
    key = oauth2.DPoPKey.generate(alg="ES256")
    login = token_request(f"{live_server.url}/auth/login/", key,
                          {"username": user.username, "password": PASSWORD})
    assert login.status_code == 200, login.content
    token = as_dpop_token(login.json(), key)
    whoami = f"{live_server.url}/api/whoami/"
    # DPoPToken signs a proof per request (and answers a `use_dpop_nonce` on its own).
    first = requests.get(whoami, auth=token, timeout=10)
    assert first.status_code == 200, first.content
    assert first.json()["id"] == user.pk
    refreshed = token_request(f"{live_server.url}/auth/refresh/", key,
                              {"refresh": token.refresh_token})
    assert refreshed.status_code == 200, refreshed.content
    token = as_dpop_token(refreshed.json(), key)
    assert requests.get(whoami, auth=token, timeout=10).status_code == 200


def test_the_same_token_with_another_key_or_as_bearer_is_refused(live_server, user):
    key = oauth2.DPoPKey.generate(alg="ES256")
    login = token_request(f"{live_server.url}/auth/login/", key,
                          {"username": user.username, "password": PASSWORD})
    access = login.json()["access"]
    whoami = f"{live_server.url}/api/whoami/"
    thief = oauth2.DPoPKey.generate(alg="ES256")
    for headers in ({"Authorization": f"Bearer {access}"},
                    {"Authorization": f"DPoP {access}"},
                    {"Authorization": f"DPoP {access}",
                     "DPoP": str(thief.proof("GET", whoami, ath=_ath(access)))}):
        resp = requests.get(whoami, headers=headers, timeout=10)
        assert resp.status_code == 401, headers
        assert resp.headers["WWW-Authenticate"].startswith("DPoP ")


def _ath(token: str) -> str:
    from tests.dpop_keys import ath

    return ath(token)
