"""An attack review of DPoP (RFC 9449, sections 4.3, 7.1, 9 and 11), as tests.

The attacker holds a stolen access or refresh token but not the private key, or a captured
proof, or a proof made for another server (or their own key and account). Every refusal
must be a 401 JSON `{"detail", "code"}` with the RFC's error in a `WWW-Authenticate: DPoP`
challenge (never a 500), and no refused request may cost the real client its session.

Tests marked `xfail(strict=True, reason="HOLE: ...")` are attacks that currently succeed:
each asserts the behaviour the RFC asks for and turns into a failure once the hole is fixed
(remove the mark then).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import uuid
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from django.test import Client
from jwt.algorithms import get_default_algorithms

from jwt_sessions import api as jwt_api
from jwt_sessions.dpop.errors import DPoPError, InvalidDPoPProof
from jwt_sessions.dpop.proofs import keys_by_header, verify_proof
from jwt_sessions.models import Session
from jwt_sessions.redis import local_cache
from jwt_sessions.tokens import decode_access_token
from tests.conftest import PASSWORD, next_ip, url
from tests.dpop_keys import ProofKey, ath, b64url, with_header
from tests.test_channels import handshake

pytestmark = pytest.mark.django_db(transaction=True)

SERVER = "http://testserver"
LOGIN, REFRESH = f"{SERVER}/auth/login/", f"{SERVER}/auth/refresh/"
WHOAMI = f"{SERVER}/api/whoami/"
WS = "ws://testserver/ws/"
HOST = [(b"host", b"testserver")]


@pytest.fixture(autouse=True)
def _fresh_header_memo():
    """Each attack meets the header checks, not a key remembered by an earlier test."""
    keys_by_header().clear()
    yield
    keys_by_header().clear()


@pytest.fixture
def key() -> ProofKey:
    return ProofKey()


@pytest.fixture
def bound(user, key) -> dict:
    """A session bound to `key` (the victim's)."""
    return bound_login(user, key.proof("POST", LOGIN))


# ------------------------------------------------------------------ helpers
def client() -> Client:
    """A client that answers a crash as the 500 a real client would get."""
    return Client(raise_request_exception=False)


def post(path: str, body: dict, proof: str | None = None, c: Client | None = None, **extra):
    if proof is not None:
        extra["HTTP_DPOP"] = proof
    return (c or client()).post(path, json.dumps(body), content_type="application/json",
                                REMOTE_ADDR=next_ip(), **extra)


def login(user, proof: str | None, password: str = PASSWORD):
    return post(url("login"), {"username": user.username, "password": password}, proof)


def bound_login(user, proof: str) -> dict:
    """The pair of a login that `proof` binds."""
    resp = login(user, proof)
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.content
    return resp.json()


def refresh(token: str, proof: str | None = None):
    return post(url("refresh"), {"refresh": token}, proof)


def call(access: str, proof: str | None = None, scheme: str = "DPoP",
         path: str = "/api/whoami/"):
    extra = {"HTTP_AUTHORIZATION": f"{scheme} {access}"}
    if proof is not None:
        extra["HTTP_DPOP"] = proof
    return client().get(path, **extra)


def refused(resp, code: str = "invalid_dpop_proof", error: str | None = None) -> dict:
    """A 401 JSON with our body and a DPoP challenge naming the RFC's error."""
    assert resp.status_code == 401, (resp.status_code, resp.content[:300])
    assert resp["Content-Type"].startswith("application/json"), resp["Content-Type"]
    body = resp.json()
    assert body["code"] == code and body["detail"], body
    challenge = resp["WWW-Authenticate"]
    assert challenge.startswith("DPoP ") and f'error="{error or code}"' in challenge, challenge
    assert 'algs="ES256' in challenge, challenge
    return body


def assert_intact(pair: dict, key: ProofKey) -> dict:
    """The victim's session survived: alive, still bound to its key, its access token
    passes with a fresh proof and its refresh token refreshes; returns the new pair."""
    session = Session.objects.get(pk=decode_access_token(pair["access"]).session_id)
    assert session.revoked_at is None and session.dpop_jkt == key.jkt
    access = pair["access"]
    resp = call(access, key.proof("GET", WHOAMI, token=access))
    assert resp.status_code == 200, resp.content
    resp = refresh(pair["refresh"], key.proof("POST", REFRESH))
    assert resp.status_code == 200, resp.content
    assert resp.json()["token_type"] == "DPoP"
    return resp.json()


def signed(key: ProofKey, header: dict | str, payload: dict | str) -> str:
    """A JWS over the exact JSON texts given (so tests can send what json.dumps never
    writes: duplicate members, NaN, huge numbers, lone surrogates), signed by `key`."""
    head = header if isinstance(header, str) else json.dumps(header)
    body = payload if isinstance(payload, str) else json.dumps(payload)
    head64 = b64url(head.encode("utf-8", "surrogatepass"))
    body64 = b64url(body.encode("utf-8", "surrogatepass"))
    signature = get_default_algorithms()[key.alg].sign(f"{head64}.{body64}".encode(),
                                                       key.private)
    return f"{head64}.{body64}.{b64url(signature)}"


def header_of(key: ProofKey, **changes) -> dict:
    return {"typ": "dpop+jwt", "alg": key.alg, "jwk": key.jwk, **changes}


def claims_for(access: str | None, htm: str = "GET", htu: str = WHOAMI, **changes) -> dict:
    claims = {"jti": uuid.uuid4().hex, "htm": htm, "htu": htu, "iat": int(time.time())}
    if access is not None:
        claims["ath"] = ath(access)
    return {**claims, **changes}


def payload_text(access: str | None, raw_members: str, htm: str = "GET",
                 htu: str = WHOAMI) -> str:
    """A payload's JSON text: the usual claims, then `raw_members` written as given."""
    text = json.dumps({"jti": uuid.uuid4().hex, "htm": htm, "htu": htu,
                       **({"ath": ath(access)} if access is not None else {})})
    return f"{text[:-1]}, {raw_members}}}"


# ------------------------------------------------------------------ alg and key confusion
@pytest.mark.parametrize("form", ["jwk json", "pem"])
def test_hs256_keyed_with_the_sessions_public_key_is_refused(bound, key, form):
    """The classic confusion: an HMAC "signed" with the public key, which anyone has."""
    access = bound["access"]
    secret = (json.dumps(key.jwk).encode() if form == "jwk json" else
              key.private.public_key().public_bytes(
                  serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    head = b64url(json.dumps(header_of(key, alg="HS256")).encode())
    body = b64url(json.dumps(claims_for(access)).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    refused(call(access, f"{head}.{body}.{b64url(mac)}"))
    assert_intact(bound, key)


@pytest.mark.parametrize("key_alg, header_alg", [
    ("RS256", "ES256"), ("ES256", "RS256"), ("ES256", "PS256"), ("PS256", "RS256"),
    ("RS256", "PS256"), ("EdDSA", "ES256"), ("ES256", "EdDSA"), ("ES256", "ES256K"),
    ("ES256", "es256"),
])
def test_a_proof_whose_alg_names_another_kind_of_key_is_refused(user, key_alg, header_alg):
    """The session's own key signs; only the header's alg lies about how."""
    key = ProofKey(key_alg)
    pair = bound_login(user, key.proof("POST", LOGIN))
    access = pair["access"]
    refused(call(access, with_header(key.proof("GET", WHOAMI, token=access), alg=header_alg)))
    assert_intact(pair, key)


def test_an_x25519_key_cannot_sign_an_eddsa_proof(user):
    key = ProofKey("EdDSA")
    x25519 = {**key.jwk, "crv": "X25519"}
    resp = login(user, key.proof("POST", LOGIN, header={"jwk": x25519}))
    refused(resp)
    assert Session.objects.count() == 0


@pytest.mark.parametrize("member", ["p", "q", "dp", "dq", "qi", "oth", "k"])
def test_a_public_jwk_with_a_private_member_added_is_refused(bound, key, member):
    """Validly signed by the right key (the thumbprint ignores extra members): only the
    private member is wrong, and RFC 9449 section 4.3 (check 7) refuses it."""
    access = bound["access"]
    jwk = {**key.jwk, member: "AQAB"}
    refused(call(access, key.proof("GET", WHOAMI, token=access, header={"jwk": jwk})))
    assert_intact(bound, key)


@pytest.mark.parametrize("case", ["x an int", "y not on the curve", "x missing",
                                  "rsa e=1", "rsa e even", "rsa n an int", "kty a list"])
def test_a_malformed_jwk_is_a_401_never_a_500(user, key, case):
    rsa = ProofKey("RS256")
    signer, jwk = {
        "x an int": (key, {**key.jwk, "x": 5}),
        "y not on the curve": (key, {**key.jwk, "y": key.jwk["x"]}),
        "x missing": (key, {k: v for k, v in key.jwk.items() if k != "x"}),
        # e=1 would make any "signature" verify: the key must be refused outright.
        "rsa e=1": (rsa, {**rsa.jwk, "e": "AQ"}),
        "rsa e even": (rsa, {**rsa.jwk, "e": "Ag"}),
        "rsa n an int": (rsa, {**rsa.jwk, "n": 7}),
        "kty a list": (key, {**key.jwk, "kty": ["EC"]}),
    }[case]
    refused(login(user, signer.proof("POST", LOGIN, header={"jwk": jwk}), password="wrong"))


@pytest.mark.parametrize("crv", [["P-256"], {"name": "P-256"}])
def test_an_unhashable_crv_is_a_401_never_a_500(user, key, crv):
    resp = login(user, key.proof("POST", LOGIN, header={"jwk": {**key.jwk, "crv": crv}}),
                 password="wrong")
    refused(resp)


def test_kid_jku_x5u_and_x5c_never_choose_the_key(bound, key, monkeypatch):
    """Only the embedded jwk verifies a proof: a thief's proof naming the victim's key by
    reference is the thief's, and nothing is fetched from the URLs it names."""
    looked_up = []
    real_getaddrinfo = socket.getaddrinfo

    def recording(host, *args, **kwargs):
        looked_up.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    access, thief = bound["access"], ProofKey()
    references = {"kid": key.jkt, "jku": "https://keys.evil.example/jwks.json",
                  "x5u": "https://keys.evil.example/cert.pem", "x5c": [b64url(b"not a cert")],
                  "x5t#S256": key.jkt}
    refused(call(access, thief.proof("GET", WHOAMI, token=access, header=references)))
    # The victim's jwk by reference only (no jwk member at all) is no proof either.
    proof = signed(thief, {"typ": "dpop+jwt", "alg": "ES256", **references}, claims_for(access))
    refused(call(access, proof))
    assert not [host for host in looked_up if "evil.example" in str(host)]
    assert_intact(bound, key)


# ------------------------------------------------------------------ duplicate members
def test_duplicate_header_members_are_read_as_the_last_one(bound, key):
    """RFC 7515 section 4: reject duplicates or take the lexically last. Either way no
    ordering of duplicates lets a thief's signature pass for the victim's key."""
    access, thief = bound["access"], ProofKey()
    victim_jwk, thief_jwk = json.dumps(key.jwk), json.dumps(thief.jwk)
    plain = f'{{"typ": "dpop+jwt", "alg": "ES256", "jwk": {victim_jwk}}}'
    assert call(access, signed(key, plain, claims_for(access))).status_code == 200  # control
    for signer, header in [
        (thief, f'{{"typ": "dpop+jwt", "alg": "ES256", "jwk": {victim_jwk}, "jwk": {thief_jwk}}}'),
        (thief, f'{{"typ": "dpop+jwt", "alg": "ES256", "jwk": {thief_jwk}, "jwk": {victim_jwk}}}'),
        (key, f'{{"typ": "dpop+jwt", "typ": "JWT", "alg": "ES256", "jwk": {victim_jwk}}}'),
        (key, f'{{"typ": "dpop+jwt", "alg": "ES256", "alg": "none", "jwk": {victim_jwk}}}'),
    ]:
        refused(call(access, signed(signer, header, claims_for(access))))
    assert_intact(bound, key)


@pytest.mark.parametrize("duplicate", [
    '"htu": "http://testserver/api/me/"', '"htm": "POST"', '"ath": "' + "A" * 43 + '"',
    '"iat": 1',
])
def test_duplicate_payload_members_are_read_as_the_last_one(bound, key, duplicate):
    """The first member says what this request is, a later duplicate says otherwise:
    the later one counts, so the proof is for another request."""
    access = bound["access"]
    text = payload_text(access, f'"iat": {int(time.time())}, {duplicate}')
    refused(call(access, signed(key, header_of(key), text)))
    assert_intact(bound, key)


# ------------------------------------------------------------------ htm, htu
@pytest.mark.parametrize("htm", ["get", "Get", "GET ", "HEAD", ""])
def test_htm_must_be_the_method_exactly(bound, key, htm):
    access = bound["access"]
    refused(call(access, key.proof(htm, WHOAMI, token=access)))


@pytest.mark.parametrize("htu", [
    "http://testserver:8000/api/whoami/",          # another port
    "http://testserver:443/api/whoami/",           # another (explicit) port
    "ws://testserver/api/whoami/",                 # another scheme
    "http://testserver./api/whoami/",              # another host name (trailing dot)
    "http://testserver.evil.example/api/whoami/",  # a host that starts alike
    "http://testserver@evil.example/api/whoami/",  # userinfo naming us, host elsewhere
    "http://evil.example#@testserver/api/whoami/",  # the host ends at '#'
    "http://evil.example?@testserver/api/whoami/",  # ... and at '?'
    "http://testserver/api/whoami",                # another path (no slash)
    "http://testserver//api/whoami/",
    "http://testserver/API/whoami/",               # paths are case-sensitive
    "http://testserver/api%2Fwhoami/",             # an encoded '/' is not a '/'
    "http://testserver/api/whoami/../me/",         # dot-segments to another resource
    "http://testserver/api/whoami/%2e%2e/me/",
    "//testserver/api/whoami/",                    # no scheme
    "/api/whoami/",                                # relative
    "http://testserver:80:80/api/whoami/",
    "http://[testserver]/api/whoami/",
])
def test_htu_naming_another_origin_or_resource_is_refused(bound, key, htu):
    access = bound["access"]
    refused(call(access, key.proof("GET", htu, token=access)))


@pytest.mark.parametrize("htu", ["http://evil.example\\@testserver/api/whoami/",
                                 "http://evil.example@testserver/api/whoami/",
                                 "http://user:secret@testserver/api/whoami/"])
def test_htu_with_userinfo_or_a_backslash_in_the_authority_is_refused(bound, key, htu):
    access = bound["access"]
    refused(call(access, key.proof("GET", htu, token=access)))


def test_an_http_request_cannot_claim_another_host(bound, key):
    """A proof made for another server (same token, e.g. behind the same gateway) sent
    here with that server's Host: Django refuses a Host outside ALLOWED_HOSTS."""
    access = bound["access"]
    proof = key.proof("GET", "http://other.example/api/whoami/", token=access)
    resp = client().get("/api/whoami/", HTTP_HOST="other.example",
                        HTTP_AUTHORIZATION=f"DPoP {access}", HTTP_DPOP=proof)
    assert resp.status_code == 400
    assert_intact(bound, key)


# ------------------------------------------------------------------ iat
@pytest.mark.parametrize("iat", ['"{now}"', "true", "false", "null", "[{now}]", '{{"t": {now}}}',
                                 "Infinity", "-Infinity", "1e400", "{stale}.0", "{future}.5"])
def test_iat_that_is_no_current_number_is_refused(bound, key, iat):
    access, now = bound["access"], int(time.time())
    member = '"iat": ' + iat.format(now=now, stale=now - 120, future=now + 120)
    refused(call(access, signed(key, header_of(key), payload_text(access, member))))


def test_a_fractional_iat_is_a_numeric_date(bound, key):
    """RFC 7519 NumericDate may have a fraction: the control for the test above."""
    access = bound["access"]
    member = f'"iat": {time.time() + 0.25:.3f}'
    assert call(access, signed(key, header_of(key), payload_text(access, member))
                ).status_code == 200


@pytest.mark.parametrize("iat", ["NaN", "1" + "0" * 400, "-1" + "0" * 400])
def test_iat_nan_or_beyond_a_float_is_a_401_at_login(user, key, iat):
    text = payload_text(None, f'"iat": {iat}', htm="POST", htu=LOGIN)
    refused(login(user, signed(key, header_of(key), text), password="wrong"))


def test_a_nan_iat_proof_is_refused_by_verify_proof(key):
    text = payload_text(None, '"iat": NaN', htm="GET", htu="https://api.example/r")
    proof = signed(key, header_of(key), text)
    with pytest.raises(InvalidDPoPProof):
        verify_proof(proof, method="GET", uri="https://api.example/r",
                     now=time.time() + 10 * 365 * 86400)


@pytest.mark.parametrize("iat", ["NaN", "1" + "0" * 400])
def test_iat_nan_or_beyond_a_float_is_a_401_with_a_token(bound, key, iat):
    access = bound["access"]
    refused(call(access, signed(key, header_of(key), payload_text(access, f'"iat": {iat}'))))


# ------------------------------------------------------------------ jti, ath
def test_jti_is_a_bounded_non_empty_string(bound, key):
    access = bound["access"]
    assert call(access, key.proof("GET", WHOAMI, token=access, jti="j" * 256)
                ).status_code == 200
    for jti in ["j" * 257, "x" * 10_000]:
        refused(call(access, key.proof("GET", WHOAMI, token=access, jti=jti)))
    for value in ["0", "12345", '["a"]', "null", '""', '{"a": 1}']:
        text = json.dumps({"htm": "GET", "htu": WHOAMI, "iat": int(time.time()),
                           "ath": ath(access)})[:-1] + f', "jti": {value}}}'
        refused(call(access, signed(key, header_of(key), text)))
    assert_intact(bound, key)


@pytest.mark.parametrize("case", ["a number", "a list", "an object", "null", "padded",
                                  "of the refresh token", "of the token's hex digest",
                                  "upper case"])
def test_ath_must_be_the_tokens_hash_as_a_string(bound, key, case):
    access = bound["access"]
    right = ath(access)
    value = {"a number": 1, "a list": [right], "an object": {"ath": right}, "null": None,
             "padded": right + "=", "of the refresh token": ath(bound["refresh"]),
             "of the token's hex digest": hashlib.sha256(access.encode()).hexdigest(),
             "upper case": right.upper()}[case]
    refused(call(access, key.proof("GET", WHOAMI, token=access, claims={"ath": value})))


@pytest.mark.parametrize("member", ['"ath": "' + "\u00e9" * 43 + '"', '"ath": "\\ud800"',
                                    '"jti": "\\ud800"'])
def test_unencodable_strings_in_a_proof_are_a_401(bound, key, member):
    access = bound["access"]
    refused(call(access, signed(key, header_of(key),
                                payload_text(access, f'"iat": {int(time.time())}, {member}'))))


def test_an_unencodable_jti_is_a_401_at_login(user, key):
    text = payload_text(None, f'"iat": {int(time.time())}, "jti": "\\ud800"',
                        htm="POST", htu=LOGIN)
    refused(login(user, signed(key, header_of(key), text), password="wrong"))


def test_a_deeply_nested_header_is_a_401_at_login(user):
    nested = "[" * 1000 + "]" * 1000
    refused(login(user, f"{b64url(nested.encode())}.e30.AA", password="wrong"))


def test_a_deeply_nested_payload_is_a_401_at_login(user, key):
    text = '{"a": ' + "[" * 1000 + "]" * 1000 + "}"
    refused(login(user, signed(key, header_of(key), text), password="wrong"))


# ------------------------------------------------------------------ replay
def test_after_a_local_cache_hit_every_proof_check_still_runs(bound, key, jwt_settings):
    """A cached hit answers the session check only (docs/dpop.md). The hit is asserted,
    not assumed: the cache trusts entries only once the revocation events are live."""
    from jwt_sessions import events

    jwt_settings(LOCAL_CACHE={"max_age": timedelta(seconds=30), "max_entries": 100})
    assert local_cache.current() is not None
    assert events.wait_until_healthy(5)
    access = bound["access"]
    first = key.proof("GET", WHOAMI, token=access)
    assert call(access, first).status_code == 200
    claims = decode_access_token(access)
    assert local_cache.current().holds(claims.session_id, claims.jti)  # now a cached hit
    for proof in [
        first,                                                             # replayed
        ProofKey().proof("GET", WHOAMI, token=access),                     # another key
        key.proof("GET", f"{SERVER}/api/me/", token=access),               # another URI
        key.proof("POST", WHOAMI, token=access),                           # another method
        key.proof("GET", WHOAMI, token=access, iat=int(time.time()) - 300),  # stale
        key.proof("GET", WHOAMI),                                          # no ath
        key.proof("GET", WHOAMI, token=bound["refresh"]),                  # another token
        with_header(key.proof("GET", WHOAMI, token=access), typ="JWT"),
    ]:
        refused(call(access, proof))
    assert local_cache.current().holds(claims.session_id, claims.jti)
    assert_intact(bound, key)


def test_a_captured_refresh_request_replayed_changes_nothing(bound, key, jwt_settings):
    """The thief replays the whole refresh request (refresh token and proof) the client
    sent: the proof is spent, so no rotation happens and no reuse is declared, and the
    captured proof does not help with the new refresh token either."""
    jwt_settings(REFRESH_REUSE_GRACE=0)
    captured = key.proof("POST", REFRESH)
    resp = refresh(bound["refresh"], captured)
    assert resp.status_code == 200, resp.content
    pair = resp.json()
    assert "already used" in refused(refresh(bound["refresh"], captured))["detail"]
    assert "already used" in refused(refresh(pair["refresh"], captured))["detail"]
    assert Session.objects.get().revoked_at is None
    assert_intact(pair, key)


def test_a_nonce_does_not_make_a_proof_reusable(user, key, jwt_settings, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "EXCEPTION_HANDLER": "jwt_sessions.exceptions.exception_handler"}
    jwt_settings(DPOP={"NONCE": True})
    nonce = post(url("login"), {"username": user.username, "password": PASSWORD},
                 key.proof("POST", LOGIN))["DPoP-Nonce"]
    resp = post(url("login"), {"username": user.username, "password": PASSWORD},
                key.proof("POST", LOGIN, nonce=nonce))
    assert resp.status_code == 200, resp.content
    access = resp.json()["access"]
    proof = key.proof("GET", WHOAMI, token=access, nonce=nonce)
    assert call(access, proof).status_code == 200
    replayed = call(access, proof)
    refused(replayed)
    assert replayed["DPoP-Nonce"]


def test_a_refresh_refused_for_its_nonce_loses_nothing(user, key, jwt_settings):
    jwt_settings(DPOP={"NONCE": True})
    nonce = post(url("login"), {"username": user.username, "password": PASSWORD},
                 key.proof("POST", LOGIN))["DPoP-Nonce"]
    pair = post(url("login"), {"username": user.username, "password": PASSWORD},
                key.proof("POST", LOGIN, nonce=nonce)).json()
    before = Session.objects.get().refresh_token_sha256
    resp = refresh(pair["refresh"], key.proof("POST", REFRESH))
    refused(resp, "use_dpop_nonce")
    assert Session.objects.get().refresh_token_sha256 == before
    resp = refresh(pair["refresh"], key.proof("POST", REFRESH, nonce=resp["DPoP-Nonce"]))
    assert resp.status_code == 200, resp.content
    assert Session.objects.get().revoked_at is None


# ------------------------------------------------------------------ stolen refresh tokens
@pytest.mark.parametrize("order", ["thief first", "thief within the grace, after the victim"])
def test_a_stolen_bearer_refresh_token_cannot_lock_the_victim_out(api, user, jwt_settings,
                                                                   order):
    """Without DPoP, whichever of thief and victim comes second with a superseded token
    is reuse and ends the session for both. A thief's key must not change that: after
    both refreshed, either the victim still holds the session or it is over, and the
    thief holds nothing."""
    if order == "thief first":
        jwt_settings(REFRESH_REUSE_GRACE=0)
    victim = api.login_ok(user.username)
    stolen, thief = victim["refresh"], ProofKey()
    if order != "thief first":
        victim = api.refresh_ok(victim["refresh"])
    resp = refresh(stolen, thief.proof("POST", REFRESH))
    thiefs = resp.json() if resp.status_code == 200 else None
    resp = refresh(victim["refresh"])  # the victim's client, as usual (no DPoP)
    session = Session.objects.get()
    assert resp.status_code == 200 or session.revoked_at is not None, (
        resp.content, session.revoked_at)
    if thiefs is not None:
        access = thiefs["access"]
        assert call(access, thief.proof("GET", WHOAMI, token=access)).status_code == 401
        assert refresh(thiefs["refresh"], thief.proof("POST", REFRESH)).status_code == 401


def test_a_thiefs_proof_does_not_shield_a_reused_refresh_token(api, user, jwt_settings):
    """The victim refreshed first: the thief's late use of the old token with a proof of
    their own is reuse, and it ends the session (the binding is no excuse)."""
    jwt_settings(REFRESH_REUSE_GRACE=0)
    victim = api.login_ok(user.username)
    api.refresh_ok(victim["refresh"])
    resp = refresh(victim["refresh"], ProofKey().proof("POST", REFRESH))
    assert resp.status_code == 401 and resp.json()["code"] == "refresh_token_reused"
    session = Session.objects.get()
    assert session.revoked_at is not None and session.dpop_jkt == ""


def test_in_cookie_mode_a_refused_dpop_refresh_keeps_the_cookie(user, key, jwt_settings):
    jwt_settings(REFRESH_COOKIE={})
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)
    resp = post(url("login"), {"username": user.username, "password": PASSWORD},
                key.proof("POST", LOGIN), c=browser)
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.content
    name = "jwt_sessions_refresh"
    cookie = browser.cookies[name].value
    browser.cookies["csrftoken"] = "k" * 32
    for proof in [None, ProofKey().proof("POST", REFRESH), key.proof("POST", LOGIN)]:
        resp = post(url("refresh"), {}, proof, c=browser, HTTP_X_CSRFTOKEN="k" * 32)
        refused(resp)
        assert name not in resp.cookies  # neither cleared nor replaced
        assert browser.cookies[name].value == cookie
    resp = post(url("refresh"), {}, key.proof("POST", REFRESH), c=browser,
                HTTP_X_CSRFTOKEN="k" * 32)
    assert resp.status_code == 200 and browser.cookies[name].value != cookie


# ------------------------------------------------------------------ Python API
def test_api_aauthenticate_without_the_requests_uri_refuses_the_proof(bound, key):
    """A consumer that forgets `uri=` gets a refusal, never a pass."""
    access = bound["access"]
    with pytest.raises(DPoPError):
        asyncio.run(jwt_api.aauthenticate(
            access, dpop_proof=key.proof("GET", WHOAMI, token=access), method="GET"))


def test_api_aauthenticate_refuses_a_proof_beside_a_bearer_token(api, user):
    bearer = api.login_ok(user.username)["access"]
    thief = ProofKey()
    with pytest.raises(DPoPError):
        asyncio.run(jwt_api.aauthenticate(
            bearer, dpop_proof=thief.proof("GET", WHOAMI, token=bearer), uri=WHOAMI))


# ------------------------------------------------------------------ Channels
def offered(access: str, *proofs: str) -> list[str]:
    return ["jwt_sessions", f"jwt_sessions.bearer.{access}",
            *(f"jwt_sessions.dpop.{proof}" for proof in proofs)]


def test_a_handshake_with_a_header_proof_and_a_subprotocol_proof_is_refused(bound, key):
    access = bound["access"]
    headers = HOST + [(b"dpop", key.proof("GET", WS, token=access).encode())]
    assert not handshake(None, subprotocols=offered(access, key.proof("GET", WS, token=access)),
                         headers=headers)[0]
    assert not handshake(None, subprotocols=offered(
        access, key.proof("GET", WS, token=access), key.proof("GET", WS, token=access)),
        headers=HOST)[0]
    assert handshake(None, subprotocols=offered(access, key.proof("GET", WS, token=access)),
                     headers=HOST)[0]  # control: one proof connects


@pytest.mark.parametrize("htm, htu", [
    ("GET", "http://testserver/ws/"),   # a proof for an HTTP GET of the same path
    ("GET", "wss://testserver/ws/"),
    ("POST", WS),
    ("GET", "ws://testserver/ws/other/"),
    ("GET", "ws://other.example/ws/"),
])
def test_a_subprotocol_proof_for_another_url_or_method_is_refused(bound, key, htm, htu):
    access = bound["access"]
    proof = key.proof(htm, htu, token=access)
    assert not handshake(None, subprotocols=offered(access, proof), headers=HOST)[0]
    assert_intact(bound, key)


@pytest.mark.parametrize("door", ["header", "subprotocol"])
def test_a_handshake_cannot_claim_another_host(bound, key, door):
    access = bound["access"]
    proof = key.proof("GET", "ws://other.example/ws/", token=access)
    headers = [(b"host", b"other.example"), (b"origin", b"http://testserver")]
    if door == "header":
        headers += [(b"authorization", f"DPoP {access}".encode()), (b"dpop", proof.encode())]
        connected = handshake(None, headers=headers)[0]
    else:
        connected = handshake(None, subprotocols=offered(access, proof), headers=headers)[0]
    assert not connected


# ------------------------------------------------------------------ Redis down
def test_redis_down_under_deny_bound_requests_get_a_json_503_and_lose_nothing(
        bound, key, jwt_settings):
    from jwt_sessions.redis.mirror import circuit

    jwt_settings(REDIS_FAILURE_POLICY="deny")
    access = bound["access"]
    before = Session.objects.get().refresh_token_sha256
    circuit.trip()
    for resp in [call(access, key.proof("GET", WHOAMI, token=access)),
                 refresh(bound["refresh"], key.proof("POST", REFRESH))]:
        assert resp.status_code == 503, resp.content
        assert resp.json()["code"] == "service_unavailable"
    circuit.reset()
    assert Session.objects.get().refresh_token_sha256 == before  # nothing rotated
    assert_intact(bound, key)


def test_redis_down_a_replayed_login_or_refresh_proof_is_caught_in_this_process(
        user, key):
    from jwt_sessions.redis.mirror import circuit

    circuit.trip()
    proof = key.proof("POST", LOGIN)
    pair = bound_login(user, proof)
    refused(login(user, proof))
    assert Session.objects.count() == 1
    captured = key.proof("POST", REFRESH)
    resp = refresh(pair["refresh"], captured)
    assert resp.status_code == 200, resp.content
    refused(refresh(resp.json()["refresh"], captured))
    assert Session.objects.get().revoked_at is None


def test_a_thief_who_binds_and_rotates_cannot_lock_the_victim_out(api, user):
    """The thief binds the stolen bearer session to their key and rotates twice more: the
    victim's bearer token, long superseded, still ends the session when it comes back,
    within the grace or after it."""
    victim = api.login_ok(user.username)
    thief = ProofKey()
    thiefs = refresh(victim["refresh"], thief.proof("POST", REFRESH)).json()
    for _ in range(2):
        thiefs = refresh(thiefs["refresh"], thief.proof("POST", REFRESH)).json()
    resp = refresh(victim["refresh"])
    assert resp.status_code == 401 and resp.json()["code"] == "refresh_token_reused"
    assert Session.objects.get().revoked_at is not None
    refused_pair = refresh(thiefs["refresh"], thief.proof("POST", REFRESH))
    assert refused_pair.status_code == 401


def test_the_binding_clients_own_retry_within_the_grace_passes(api, user, key):
    """The client that bound its session retries (the answer was lost) with its key: a
    retry, not reuse; without the key the same token is the thief's case."""
    bearer = api.login_ok(user.username)["refresh"]
    first = refresh(bearer, key.proof("POST", REFRESH))
    assert first.status_code == 200 and first.json()["token_type"] == "DPoP"
    retry = refresh(bearer, key.proof("POST", REFRESH))
    assert retry.status_code == 200, retry.content
    assert retry.json()["token_type"] == "DPoP"
    assert Session.objects.get().revoked_at is None
    assert Session.objects.get().dpop_jkt == key.jkt


def test_a_retry_within_the_grace_binds_nothing(api, user, jwt_settings):
    """The client refreshed its bearer session; a retry of the old token with a key (a
    thief's, within the grace) gets a bearer pair: a retry changes no binding."""
    first = api.login_ok(user.username)
    api.refresh_ok(first["refresh"])
    resp = refresh(first["refresh"], ProofKey().proof("POST", REFRESH))
    assert resp.status_code == 200, resp.content
    assert resp.json()["token_type"] == "Bearer"
    assert Session.objects.get().dpop_jkt == ""
