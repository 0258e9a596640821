"""DPoP at the other doors: django-ninja (sync and async) and the Channels handshake
(proof in a header for native clients, in a subprotocol for browsers)."""
from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from jwt_sessions.redis.store import astore
from tests.dpop_keys import ProofKey
from tests.test_channels import handshake, seen

pytestmark = pytest.mark.django_db(transaction=True)

SERVER = "http://testserver"


@pytest.fixture
def key() -> ProofKey:
    return ProofKey()


@pytest.fixture
def bound(api, user, key) -> dict:
    resp = api.login(user.username, HTTP_DPOP=key.proof("POST", f"{SERVER}/auth/login/"))
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.content
    return resp.json()


# ------------------------------------------------------------------ django-ninja
def ninja_get(path: str, authorization: str, proof: str | None = None, asynchronous=False):
    headers = {"Authorization": authorization, **({"DPoP": proof} if proof else {})}
    if not asynchronous:
        return Client(headers=headers).get(path)

    async def run():
        try:
            return await AsyncClient().get(path, headers=headers)
        finally:
            await astore.aclose()

    return async_to_sync(run)()


@pytest.mark.urls("tests.ninja_urls")
@pytest.mark.parametrize("asynchronous", [False, True])
def test_ninja_accepts_a_bound_token_only_with_its_proof(bound, key, asynchronous):
    path = f"/ninja/{'async' if asynchronous else 'sync'}/whoami"
    access = bound["access"]
    resp = ninja_get(path, f"DPoP {access}", key.proof("GET", SERVER + path, token=access),
                     asynchronous)
    assert resp.status_code == 200, resp.content
    for refused, code in [
        (ninja_get(path, f"Bearer {access}", None, asynchronous), "token_invalid"),
        (ninja_get(path, f"DPoP {access}", None, asynchronous), "invalid_dpop_proof"),
        (ninja_get(path, f"DPoP {access}", ProofKey().proof("GET", SERVER + path,
                                                             token=access), asynchronous),
         "invalid_dpop_proof"),
    ]:
        assert refused.status_code == 401, refused.content
        assert refused.json()["code"] == code
        assert refused["WWW-Authenticate"].startswith("DPoP ")


@pytest.mark.urls("tests.ninja_urls")
@pytest.mark.parametrize("asynchronous", [False, True])
def test_ninja_refuses_a_replayed_proof_and_gives_nonces(bound, key, asynchronous,
                                                         jwt_settings):
    path = f"/ninja/{'async' if asynchronous else 'sync'}/whoami"
    access = bound["access"]
    proof = key.proof("GET", SERVER + path, token=access)
    assert ninja_get(path, f"DPoP {access}", proof, asynchronous).status_code == 200
    replayed = ninja_get(path, f"DPoP {access}", proof, asynchronous)
    assert replayed.status_code == 401 and replayed.json()["code"] == "invalid_dpop_proof"
    jwt_settings(DPOP={"NONCE": True})
    resp = ninja_get(path, f"DPoP {access}", key.proof("GET", SERVER + path, token=access),
                     asynchronous)
    assert resp.json()["code"] == "use_dpop_nonce" and resp["DPoP-Nonce"]
    resp = ninja_get(path, f"DPoP {access}", key.proof(
        "GET", SERVER + path, token=access, nonce=resp["DPoP-Nonce"]), asynchronous)
    assert resp.status_code == 200, resp.content


# ------------------------------------------------------------------ Channels
WS = "ws://testserver/ws/"
HOST = [(b"host", b"testserver")]


def test_a_native_handshake_presents_the_proof_in_a_header(bound, key):
    access = bound["access"]
    headers = HOST + [(b"authorization", f"DPoP {access}".encode()),
                      (b"dpop", key.proof("GET", WS, token=access).encode())]
    connected, _, _ = handshake(None, headers=headers)
    assert connected
    assert seen[0]["auth"].dpop_jkt == key.jkt
    assert b"dpop" not in dict(seen[0]["headers"])


def test_a_browser_handshake_presents_the_proof_as_a_subprotocol(bound, key):
    access = bound["access"]
    offered = ["jwt_sessions", f"jwt_sessions.bearer.{access}",
               f"jwt_sessions.dpop.{key.proof('GET', WS, token=access)}"]
    connected, subprotocol, _ = handshake(None, subprotocols=offered, headers=HOST)
    assert connected and subprotocol == "jwt_sessions"
    assert seen[0]["subprotocols"] == ["jwt_sessions"]


@pytest.mark.parametrize("case", ["no proof", "foreign key", "replayed", "other url",
                                  "no host", "as bearer"])
def test_a_handshake_without_the_keys_proof_is_refused(bound, key, case):
    access = bound["access"]
    htu = {"other url": "ws://testserver/other/", "no host": "nonsense"}.get(case, WS)
    proof = (ProofKey() if case == "foreign key" else key).proof("GET", htu, token=access)
    if case == "replayed":
        offered = ["jwt_sessions", f"jwt_sessions.bearer.{access}",
                   f"jwt_sessions.dpop.{proof}"]
        assert handshake(None, subprotocols=offered, headers=HOST)[0]
    headers = [] if case == "no host" else list(HOST)
    scheme = "Bearer" if case == "as bearer" else "DPoP"
    headers.append((b"authorization", f"{scheme} {access}".encode()))
    if case != "no proof":
        headers.append((b"dpop", proof.encode()))
    connected, _, _ = handshake(None, headers=headers)
    assert not connected


def test_a_bearer_socket_is_unchanged(tokens):
    connected, _, _ = handshake(tokens["access"], headers=HOST)
    assert connected and seen[0]["auth"].dpop_jkt is None
