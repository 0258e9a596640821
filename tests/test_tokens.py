"""tokens.py internals that no HTTP test can see: the per-header key memo."""
import pytest

from jwt_sessions.tokens import InvalidToken, decode_access_token, key_by_header
from tests import jwt_forge as forge

pytestmark = pytest.mark.django_db(transaction=True)


def memo() -> dict:
    return key_by_header()


def test_only_headers_with_a_valid_signature_are_remembered(tokens):
    memo().clear()
    claims = forge.parts(tokens["access"])[1]
    for n in range(40):  # distinct headers, wrong key: each refused, none remembered
        bogus = forge.hmac_sign({"typ": "at+jwt", "alg": "HS256", "x": n}, claims, b"k" * 32)
        with pytest.raises(InvalidToken):
            decode_access_token(bogus)
    assert memo() == {}
    decode_access_token(tokens["access"])
    assert list(memo()) == [tokens["access"].split(".")[0]]
