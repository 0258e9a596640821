"""The memo of proof headers (the parsed key of a header seen with a valid signature):
it saves parsing the JWK on every request, and must never let one key's header vouch
for a signature by another key, fill up with junk, or grow without bound."""
from __future__ import annotations

import pytest

from jwt_sessions.dpop import proofs
from jwt_sessions.dpop.errors import InvalidDPoPProof
from jwt_sessions.dpop.proofs import keys_by_header, verify_proof
from tests.dpop_keys import ProofKey

URI = "https://api.example/resource"


@pytest.fixture(autouse=True)
def empty_memo():
    keys_by_header().clear()
    yield
    keys_by_header().clear()


def verify(proof: str):
    return verify_proof(proof, method="GET", uri=URI)


def test_a_remembered_header_never_verifies_a_signature_by_another_key():
    victim, attacker = ProofKey(), ProofKey()
    assert verify(victim.proof("GET", URI)).jkt == victim.jkt
    # The attacker copies the victim's header byte for byte (so the memo answers) and
    # signs with his own key.
    forged = attacker.proof("GET", URI, header={"jwk": victim.jwk})
    assert forged.split(".")[0] in keys_by_header()
    with pytest.raises(InvalidDPoPProof):
        verify(forged)
    assert verify(victim.proof("GET", URI)).jkt == victim.jkt


def test_a_header_with_a_bad_signature_is_not_remembered():
    victim, attacker = ProofKey(), ProofKey()
    forged = attacker.proof("GET", URI, header={"jwk": victim.jwk})
    with pytest.raises(InvalidDPoPProof):
        verify(forged)
    assert keys_by_header() == {}


def test_the_memo_is_bounded_and_forgets_the_oldest_first(monkeypatch):
    monkeypatch.setattr(proofs, "_HEADER_MEMO_SIZE", 3)
    keys = [ProofKey() for _ in range(5)]
    headers = []
    for key in keys:
        proof = key.proof("GET", URI)
        headers.append(proof.split(".")[0])
        verify(proof)
    assert list(keys_by_header()) == headers[2:]
    # A forgotten header is parsed again, and its proofs still pass.
    assert verify(keys[0].proof("GET", URI)).jkt == keys[0].jkt
    assert len(keys_by_header()) == 3
