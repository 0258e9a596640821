"""A DPoP client for tests: a key pair and the proofs it signs, built directly on PyJWT
and cryptography (never on the code under test), with every field overridable so tests
can forge the bad proofs an attacker would send."""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def ath(token: str) -> str:
    return b64url(hashlib.sha256(token.encode()).digest())


class ProofKey:
    def __init__(self, alg: str = "ES256", rsa_bits: int = 2048) -> None:
        self.alg = alg
        if alg in _CURVES:
            self.private = ec.generate_private_key(_CURVES[alg]())
            codec = ECAlgorithm
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            codec = OKPAlgorithm
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
            codec = RSAAlgorithm
        self.jwk = json.loads(codec.to_jwk(self.private.public_key()))

    @property
    def jkt(self) -> str:
        """RFC 7638, computed here independently of jwt_sessions."""
        members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
                   "OKP": ("crv", "kty", "x")}[self.jwk["kty"]]
        canonical = json.dumps({m: self.jwk[m] for m in members}, separators=(",", ":"),
                               sort_keys=True)
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def proof(self, htm: str, htu: str, *, token: str | None = None, nonce: str | None = None,
              iat: float | None = None, jti: str | None = None, header: dict | None = None,
              claims: dict | None = None) -> str:
        payload = {"jti": jti or uuid.uuid4().hex, "htm": htm, "htu": htu,
                   "iat": int(time.time()) if iat is None else iat}
        if token is not None:
            payload["ath"] = ath(token)
        if nonce is not None:
            payload["nonce"] = nonce
        payload.update(claims or {})
        # PyJWT drops a falsy typ: header={"typ": None} makes a proof without one.
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return jwt.encode(payload, self.private, algorithm=self.alg, headers=headers)


def with_header(proof: str, **changes) -> str:
    """The proof with its header changed and its signature kept (so it no longer
    verifies unless the change is ignored)."""
    head, body, signature = proof.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    header.update(changes)
    return ".".join([b64url(json.dumps(header).encode()), body, signature])


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})
