"""A proof's signature, checked by `cryptography` directly for every algorithm a proof
may use: a genuine one passes; another key's, an altered one, or one in another encoding
than the JWS one is refused, whether or not the header was seen before."""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from jwt_sessions.dpop.errors import InvalidDPoPProof
from jwt_sessions.dpop.proofs import keys_by_header, verify_proof
from jwt_sessions.dpop.settings import SUPPORTED_ALGORITHMS
from tests.dpop_keys import ProofKey, b64url

URI = "https://api.example/resource"
ALGORITHMS = sorted(SUPPORTED_ALGORITHMS)


@pytest.fixture(autouse=True)
def every_algorithm(jwt_settings):
    jwt_settings(DPOP={"ALGORITHMS": ALGORITHMS})
    keys_by_header().clear()
    yield
    keys_by_header().clear()


def verify(proof: str):
    return verify_proof(proof, method="GET", uri=URI)


def with_signature(proof: str, signature: bytes) -> str:
    head, body, _ = proof.split(".")
    return f"{head}.{body}.{b64url(signature)}"


def signature_of(proof: str) -> bytes:
    part = proof.split(".")[2]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.fixture(scope="module", params=ALGORITHMS)
def keys(request):
    """Two keys of one algorithm: the client's and an attacker's."""
    return ProofKey(request.param), ProofKey(request.param)


@pytest.mark.parametrize("seen", [False, True], ids=["header-new", "header-remembered"])
def test_only_the_headers_key_signs_a_proof(keys, seen):
    client, attacker = keys
    if seen:
        assert verify(client.proof("GET", URI)).jkt == client.jkt
    assert verify(client.proof("GET", URI)).jkt == client.jkt
    with pytest.raises(InvalidDPoPProof):
        verify(attacker.proof("GET", URI, header={"jwk": client.jwk}))
    genuine = signature_of(client.proof("GET", URI))
    altered = bytes([genuine[0] ^ 1]) + genuine[1:]
    for signature in (altered, genuine[:-1], genuine + b"\0", b""):
        with pytest.raises(InvalidDPoPProof):
            verify(with_signature(client.proof("GET", URI), signature))


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_an_ecdsa_signature_must_have_the_curves_length(alg):
    """s with a leading zero byte is the same number, but not the JWS encoding."""
    key = ProofKey(alg)
    proof = key.proof("GET", URI)
    genuine = signature_of(proof)
    half = len(genuine) // 2
    with pytest.raises(InvalidDPoPProof):
        verify(with_signature(proof, genuine[:half] + b"\0" + genuine[half:]))
    assert verify(proof).jkt == key.jkt


def test_an_ecdsa_signature_in_der_is_refused():
    """JWS puts r and s side by side; the DER a bare ECDSA library makes is refused, even
    when it encodes a valid signature of these bytes."""
    key = ProofKey("ES256")
    proof = key.proof("GET", URI)
    signed = proof.rsplit(".", 1)[0].encode()
    der = key.private.sign(signed, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidDPoPProof):
        verify(with_signature(proof, der))
    assert verify(proof).jkt == key.jkt
