"""A proof's signature checked by `cryptography` directly, by a verifier made once per
client key: PyJWT parses the JWK (its checks of the key kept), and the verifier then
only hashes and verifies, with its padding and hash objects built beforehand. This runs
on every bound request."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

# (signed bytes, raw JWS signature) -> whether the key signed them.
Verifier = Callable[[bytes, bytes], bool]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def public_key(jwk: dict[str, Any], alg: str) -> Any:
    """The public key of a JWK for `alg` (PyJWT's parsing and checks); PyJWKError,
    InvalidKeyError, ValueError... for a malformed one."""
    return jwt.PyJWK(jwk, algorithm=alg).key


def verifier(key: Any, alg: str) -> Verifier:
    """The signature check of `key` under the JWS algorithm `alg` (one of the
    asymmetric ones a proof may use, its key of the kind `alg` names)."""
    if alg == "EdDSA":
        return _checked(lambda signed, signature: key.verify(signature, signed))
    digest = _HASHES[alg[2:]]()
    if alg.startswith("ES"):
        return _ecdsa(key, ec.ECDSA(digest))
    scheme: padding.AsymmetricPadding = (
        padding.PKCS1v15() if alg.startswith("RS")
        else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size))
    return _checked(lambda signed, signature: key.verify(signature, signed, scheme, digest))


def _ecdsa(key: Any, scheme: ec.ECDSA) -> Verifier:
    """A JWS ECDSA signature is r and s side by side, each as long as the curve's order
    (RFC 7518): anything else is refused, the rest goes to OpenSSL as DER."""
    size = (key.curve.key_size + 7) // 8

    def verify(signed: bytes, signature: bytes) -> None:
        if len(signature) != 2 * size:
            raise InvalidSignature
        key.verify(encode_dss_signature(int.from_bytes(signature[:size], "big"),
                                        int.from_bytes(signature[size:], "big")),
                   signed, scheme)

    return _checked(verify)


def _checked(verify: Callable[[bytes, bytes], None]) -> Verifier:
    def check(signed: bytes, signature: bytes) -> bool:
        try:
            verify(signed, signature)
        except InvalidSignature:
            return False
        return True

    return check
