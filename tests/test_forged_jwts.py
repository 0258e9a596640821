"""JWT hardening (RFC 8725): every token here is forged by hand (tests/jwt_forge.py).

Each refusal test starts from the claims of a real, live access token, so the single
thing that is wrong with the forged token is the thing under test; the control test
proves that a faithful hand-made copy is accepted.
"""
from __future__ import annotations

import functools
import socket

import pytest
from django.conf import settings as django_settings

from tests import jwt_forge as forge
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)

ISSUER = "https://issuer.example"
AUDIENCE = "api.example"


@functools.cache
def _rsa():
    return forge.rsa_key()


@pytest.fixture
def live(tokens):
    """(header, claims) of a live access token signed with the default HS256 key."""
    return forge.parts(tokens["access"])


def _secret() -> bytes:
    return django_settings.SECRET_KEY.encode()


def _set_or_dropped(members: dict, name: str, value: object) -> dict:
    """A copy of `members` with `name` set to `value`, or without it for None."""
    rest = {k: v for k, v in members.items() if k != name}
    return rest if value is None else {**rest, name: value}


def _refused(api, token: str) -> None:
    assert_error(api.whoami(token), 401, "token_invalid")


def test_hand_made_copy_of_a_live_token_is_accepted(api, live):
    header, claims = live
    assert header == {"alg": "HS256", "typ": "at+jwt"}
    assert api.whoami(forge.hmac_sign(header, claims, _secret())).status_code == 200


def test_wrong_signature_is_refused(api, live):
    _refused(api, forge.hmac_sign(*live, b"another-key-" + b"k" * 40))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused_in_every_spelling(api, live, alg):
    header, claims = live
    _refused(api, forge.unsigned({**header, "alg": alg}, claims))
    # ... also with a signature that is a valid HMAC of the content
    mac = forge.hmac_sign({**header, "alg": alg}, claims, _secret()).rsplit(".", 1)[1]
    _refused(api, forge.unsigned({**header, "alg": alg}, claims, forge.b64url_decode(mac)))


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused_when_hs256_is_pinned(api, live, alg):
    header, claims = live
    _refused(api, forge.hmac_sign({**header, "alg": alg}, claims, _secret(), alg=alg))


@pytest.fixture
def rs256(jwt_settings):
    key = _rsa()
    jwt_settings(ALGORITHM="RS256", SIGNING_KEY=forge.private_pem(key),
                 VERIFYING_KEY=forge.public_pem(key))
    return key


def test_hs_rs_key_confusion_is_impossible(api, user, rs256):
    live = api.login_ok(user.username)["access"]
    header, claims = forge.parts(live)
    assert header["alg"] == "RS256"
    assert api.whoami(forge.private_sign(header, claims, rs256)).status_code == 200
    public = forge.public_pem(rs256)
    # The classic attack: HMAC-sign with the public key the server publishes.
    for alg in ("HS256", "HS384", "HS512"):
        _refused(api, forge.hmac_sign({**header, "alg": alg}, claims, public, alg=alg))
    _refused(api, forge.hmac_sign(header, claims, public))  # header still says RS256


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+JWT ", "refresh+jwt", "dpop+jwt"])
def test_typ_other_than_at_jwt_is_refused(api, live, typ):
    header, claims = live
    _refused(api, forge.hmac_sign(_set_or_dropped(header, "typ", typ), claims, _secret()))


@pytest.mark.parametrize("token_type", ["refresh", "Access", "id", 1])
def test_token_type_other_than_access_is_refused(api, live, token_type):
    header, claims = live
    _refused(api, forge.hmac_sign(header, {**claims, "token_type": token_type}, _secret()))


@pytest.mark.parametrize("claim", ["sub", "sid", "jti", "iat", "exp", "token_type"])
def test_each_required_claim_missing_is_refused(api, live, claim):
    header, claims = live
    del claims[claim]
    _refused(api, forge.hmac_sign(header, claims, _secret()))


@pytest.fixture
def issuer_audience(jwt_settings, api, user):
    jwt_settings(ISSUER=ISSUER, AUDIENCE=AUDIENCE)
    header, claims = forge.parts(api.login_ok(user.username)["access"])
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    assert api.whoami(forge.hmac_sign(header, claims, _secret())).status_code == 200
    return header, claims


@pytest.mark.parametrize("iss", [None, "https://issuer.exampl", "https://issuer.example/",
                                 "issuer", "https://evil.example", ["https://issuer.example"]])
def test_issuer_must_match_exactly(api, issuer_audience, iss):
    header, claims = issuer_audience
    _refused(api, forge.hmac_sign(header, _set_or_dropped(claims, "iss", iss), _secret()))


@pytest.mark.parametrize("aud", [None, "api.exampl", "api.example.evil", "other",
                                 ["api.example", "other"], []])
def test_audience_must_match_exactly(api, issuer_audience, aud):
    header, claims = issuer_audience
    _refused(api, forge.hmac_sign(header, _set_or_dropped(claims, "aud", aud), _secret()))


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to fetch a key from a URL in the header fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the verifier tried to open a connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_jwk_header_with_attacker_hmac_key_is_never_used(api, live, no_network):
    header, claims = live
    attacker = b"attacker-chosen-secret-" + b"a" * 40
    jwk = {"kty": "oct", "k": forge.b64url(attacker)}
    _refused(api, forge.hmac_sign({**header, "jwk": jwk}, claims, attacker))


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_key_pointing_headers_with_attacker_rsa_key_are_never_used(api, user, rs256, member,
                                                                   no_network):
    header, claims = forge.parts(api.login_ok(user.username)["access"])
    attacker = forge.rsa_key()
    pointer = {"jwk": forge.rsa_public_jwk(attacker),
               "jku": "https://attacker.example/jwks.json",
               "x5u": "https://attacker.example/cert.pem",
               "x5c": [forge.b64url(b"not-really-a-certificate")]}[member]
    forged = {**header, member: pointer}
    _refused(api, forge.private_sign(forged, claims, attacker))
    # Ignored, not followed: the same header on a token we signed changes nothing.
    assert api.whoami(forge.private_sign(forged, claims, rs256)).status_code == 200


@pytest.mark.parametrize("crit", [["exp"], ["b64"], []])
def test_crit_header_is_refused(api, live, crit):
    header, claims = live
    _refused(api, forge.hmac_sign({**header, "crit": crit}, claims, _secret()))


@pytest.fixture
def two_kids(jwt_settings, api, user):
    """Current key "k2"; retired key "k1" still verifying."""
    old, new = b"old-hmac-key-" + b"o" * 40, b"new-hmac-key-" + b"n" * 40
    jwt_settings(SIGNING_KEY=new, KEY_ID="k2", ADDITIONAL_VERIFYING_KEYS={"k1": old})
    header, claims = forge.parts(api.login_ok(user.username)["access"])
    assert header["kid"] == "k2"
    return header, claims, old, new


def test_kid_selects_among_configured_keys(api, two_kids):
    header, claims, old, new = two_kids
    assert api.whoami(forge.hmac_sign(header, claims, new)).status_code == 200
    assert api.whoami(forge.hmac_sign({**header, "kid": "k1"}, claims, old)).status_code == 200
    # kid picks the key: a token naming k1 but signed with k2 (or vice versa) is refused
    _refused(api, forge.hmac_sign({**header, "kid": "k1"}, claims, new))
    _refused(api, forge.hmac_sign(header, claims, old))


@pytest.mark.parametrize("kid", ["k3", "", "../k2", ["k2"], 2])
def test_unknown_kid_is_refused(api, two_kids, kid):
    header, claims, old, new = two_kids
    _refused(api, forge.hmac_sign({**header, "kid": kid}, claims, new))


def test_unknown_kid_is_refused_with_a_single_key(api, user, jwt_settings):
    jwt_settings(KEY_ID="only")
    header, claims = forge.parts(api.login_ok(user.username)["access"])
    assert api.whoami(forge.hmac_sign(header, claims, _secret())).status_code == 200
    _refused(api, forge.hmac_sign({**header, "kid": "other"}, claims, _secret()))


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c", "a.b.c.d", "e30.e30.", "....",
                                     "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
                                     "\u00e9.\u00e9.\u00e9"])
def test_malformed_tokens_are_401_not_500(api, garbage):
    resp = api.client.get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {garbage}")
    assert resp.status_code == 401, resp.content


def test_expired_token_is_refused_as_expired(api, live):
    header, claims = live
    claims.update(iat=claims["iat"] - 3600, exp=claims["iat"] - 1800)
    assert_error(api.whoami(forge.hmac_sign(header, claims, _secret())), 401, "token_expired")


@pytest.fixture
def audiences(jwt_settings, api, user):
    """AUDIENCE as a list (the settings allow one): issued as that list, and verified."""
    jwt_settings(AUDIENCE=[AUDIENCE, "admin.example"])
    header, claims = forge.parts(api.login_ok(user.username)["access"])
    assert claims["aud"] == [AUDIENCE, "admin.example"]
    return header, claims


@pytest.mark.parametrize("aud", [[AUDIENCE, "admin.example"], AUDIENCE, ["admin.example"],
                                 [AUDIENCE, "other"]])
def test_a_list_audience_accepts_a_token_naming_one_of_them(api, audiences, aud):
    header, claims = audiences
    resp = api.whoami(forge.hmac_sign(header, {**claims, "aud": aud}, _secret()))
    assert resp.status_code == 200, resp.content


@pytest.mark.parametrize("aud", [None, "other", ["other"], [], "api.exampl"])
def test_a_list_audience_refuses_a_token_naming_none_of_them(api, audiences, aud):
    header, claims = audiences
    _refused(api, forge.hmac_sign(header, _set_or_dropped(claims, "aud", aud), _secret()))
