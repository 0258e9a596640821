"""The pieces of DPoP on their own: RFC 7638 thumbprints, RFC 3986 URI comparison,
server nonces, and the system checks of the DPOP setting."""
from __future__ import annotations

import pytest
from django.core.checks import run_checks
from freezegun import freeze_time

from jwt_sessions.dpop import nonces
from jwt_sessions.dpop.proofs import normalized_uri
from jwt_sessions.dpop.thumbprints import jwk_thumbprint
from tests.dpop_keys import ProofKey

# RFC 7638, section 3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc"
         "_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQ"
         "R0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bF"
         "TWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}


def test_thumbprint_of_the_rfc_7638_example():
    assert jwk_thumbprint(RFC7638_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_thumbprints_agree_with_a_third_party(alg):
    jwskate = pytest.importorskip("jwskate")
    key = ProofKey(alg)
    assert jwk_thumbprint(key.jwk) == jwskate.Jwk(key.jwk).thumbprint() == key.jkt


@pytest.mark.parametrize("jwk", [{}, {"kty": "oct", "k": "AA"}, {"kty": "EC", "crv": "P-256",
                                                                  "x": "a"},
                                 {"kty": "RSA", "n": 1, "e": "AQAB"}])
def test_thumbprint_refuses_incomplete_or_symmetric_keys(jwk):
    with pytest.raises(ValueError):
        jwk_thumbprint(jwk)


@pytest.mark.parametrize("a, b", [
    ("https://Example.COM/a/b", "https://example.com/a/b"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:80", "http://example.com/"),
    ("https://example.com/a?q=1#frag", "https://example.com/a"),
    ("https://example.com/%7euser/%2f", "https://example.com/~user/%2F"),
    ("wss://example.com:443/ws/", "wss://example.com/ws/"),
    ("http://[::1]:8000/x", "http://[::1]:8000/x"),
])
def test_uris_compare_as_rfc_3986_normalises_them(a, b):
    assert normalized_uri(a) == normalized_uri(b) != ""


@pytest.mark.parametrize("a, b", [
    ("https://example.com/a", "http://example.com/a"),
    ("https://example.com:8443/a", "https://example.com/a"),
    ("https://example.com/a/", "https://example.com/a"),
    ("https://example.com/A", "https://example.com/a"),
])
def test_different_uris_stay_different(a, b):
    assert normalized_uri(a) != normalized_uri(b)


@pytest.mark.parametrize("value", ["", "nonsense", "/relative/path", "https://", "http://x:99999/"])
def test_malformed_uris_normalise_to_nothing(value):
    assert normalized_uri(value) == ""


def test_a_nonce_is_fresh_for_its_slot_and_the_next(jwt_settings):
    jwt_settings(DPOP={"NONCE_LIFETIME": 60})
    with freeze_time("2026-01-01 12:00:10") as clock:
        nonce = nonces.new_nonce()
        assert nonces.is_fresh(nonce)
        clock.tick(60)
        assert nonces.is_fresh(nonce)
        clock.tick(60)
        assert not nonces.is_fresh(nonce)


@pytest.mark.parametrize("value", [None, 3, "", "A" * 32, "A" * 100, "!!!!"])
def test_forged_nonces_are_not_fresh(value):
    assert not nonces.is_fresh(value)


def test_a_nonce_of_another_secret_key_is_not_fresh(settings):
    nonce = nonces.new_nonce()
    settings.SECRET_KEY = "another-secret-key-" + "y" * 40
    assert not nonces.is_fresh(nonce)


def _dpop_errors() -> set[str]:
    return {m.id for m in run_checks() if m.id.startswith("jwt_sessions.E04")}


@pytest.mark.parametrize("value, error", [
    ("yes", "jwt_sessions.E040"),
    ({"REQUIRE": True}, "jwt_sessions.E041"),
    ({"REQUIRED": "yes"}, "jwt_sessions.E042"),
    ({"NONCE": 1}, "jwt_sessions.E042"),
    ({"ALGORITHMS": ["HS256"]}, "jwt_sessions.E043"),
    ({"ALGORITHMS": "ES256"}, "jwt_sessions.E043"),
    ({"ALGORITHMS": []}, "jwt_sessions.E043"),
    ({"ALGORITHMS": ["none"]}, "jwt_sessions.E043"),
    ({"PROOF_MAX_AGE": 0}, "jwt_sessions.E044"),
    ({"NONCE_LIFETIME": "5 minutes"}, "jwt_sessions.E044"),
])
def test_bad_dpop_settings_fail_the_checks(jwt_settings, value, error):
    jwt_settings(DPOP=value)
    assert _dpop_errors() == {error}


def test_good_dpop_settings_pass_the_checks(jwt_settings):
    jwt_settings(DPOP={"REQUIRED": True, "NONCE": True, "ALGORITHMS": ["ES256", "EdDSA"],
                       "PROOF_MAX_AGE": 30, "NONCE_LIFETIME": 120})
    assert _dpop_errors() == set()
