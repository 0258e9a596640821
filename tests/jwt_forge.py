"""Hand-made JWTs for the hardening tests: base64url, hmac and cryptography, no PyJWT.

Forging by hand means a refused token is refused by our verifier, not by a library that
refused to produce it in the first place.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict, dict]:
    """(header, claims) of a token, unverified."""
    header, claims, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(claims))


def signing_input(header: dict, claims: dict) -> bytes:
    return f"{segment(header)}.{segment(claims)}".encode()


def hmac_sign(header: dict, claims: dict, key: bytes | str, alg: str = "HS256") -> str:
    """An HMAC-signed JWT; `alg` chooses the hash, `header` is used as given."""
    key = key.encode() if isinstance(key, str) else key
    data = signing_input(header, claims)
    mac = hmac.new(key, data, _HMAC_HASHES[alg]).digest()
    return f"{data.decode()}.{b64url(mac)}"


def unsigned(header: dict, claims: dict, signature: bytes = b"") -> str:
    return f"{signing_input(header, claims).decode()}.{b64url(signature)}"


def private_sign(header: dict, claims: dict, private_key: Any) -> str:
    """Sign with an RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA) private key."""
    data = signing_input(header, claims)
    if isinstance(private_key, rsa.RSAPrivateKey):
        signature = private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = private_key.sign(data)
    return f"{data.decode()}.{b64url(signature)}"


# ------------------------------------------------------------------ keys
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def private_pem(key: Any) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: Any) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def rsa_public_jwk(key: rsa.RSAPrivateKey) -> dict:
    numbers = key.public_key().public_numbers()

    def encode(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "n": encode(numbers.n), "e": encode(numbers.e)}
