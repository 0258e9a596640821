"""tokens.py internals that no HTTP test can see: the per-header key memo."""
import pytest

from jwt_sessions.conf import jwt_settings
from jwt_sessions.tokens import InvalidToken, decode_access_token, key_by_header, verified_tokens
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


# ------------------------------------------------------------------ verified-token memo
def verified() -> dict:
    return verified_tokens()


@pytest.fixture
def pyjwt_calls(monkeypatch):
    import jwt

    calls = [0]
    real = jwt.api_jwt.decode_complete

    def spy(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(jwt.api_jwt, "decode_complete", spy)
    return calls


def test_a_token_is_verified_once_per_process(tokens, pyjwt_calls):
    first = decode_access_token(tokens["access"])
    for _ in range(5):
        assert decode_access_token(tokens["access"]) == first
    assert pyjwt_calls[0] == 1


def test_expiry_is_still_checked_on_every_request(tokens, clock):
    from jwt_sessions.tokens import ExpiredToken

    decode_access_token(tokens["access"])
    clock.tick(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds() + 1)
    with pytest.raises(ExpiredToken):
        decode_access_token(tokens["access"])
    assert tokens["access"] not in verified()


def test_leeway_applies_to_remembered_tokens_as_to_pyjwt(tokens, clock, jwt_settings):
    jwt_settings(LEEWAY=30)
    decode_access_token(tokens["access"])
    clock.tick(15 * 60 + 10)  # past exp, within the leeway
    decode_access_token(tokens["access"])


def test_forged_tokens_never_enter_the_memo(tokens):
    claims = forge.parts(tokens["access"])[1]
    for n in range(20):
        bogus = forge.hmac_sign({"typ": "at+jwt", "alg": "HS256"}, {**claims, "n": n},
                                b"k" * 32)
        with pytest.raises(InvalidToken):
            decode_access_token(bogus)
    assert verified() == {}


def test_the_memo_is_bounded(tokens, monkeypatch):
    from jwt_sessions import tokens as module

    monkeypatch.setattr(module, "_VERIFIED_MEMO_SIZE", 3)
    claims = forge.parts(tokens["access"])[1]
    signed = [forge.hmac_sign({"typ": "at+jwt", "alg": "HS256"}, {**claims, "jti": f"j{n}"},
                              jwt_settings.SIGNING_KEY.encode()) for n in range(5)]
    for token in signed:
        decode_access_token(token)
    assert list(verified()) == signed[2:]  # the oldest went first


def test_a_settings_change_forgets_what_was_verified(tokens, jwt_settings):
    decode_access_token(tokens["access"])
    jwt_settings(SIGNING_KEY="another-signing-key-" + "y" * 40)
    with pytest.raises(InvalidToken):
        decode_access_token(tokens["access"])
