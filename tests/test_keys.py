"""Signing keys: every supported algorithm end to end, key ids, key rotation, the JWKS
endpoint and the system checks that catch unusable keys at start-up."""
from __future__ import annotations

import functools

import pytest

from jwt_sessions.checks import check_settings
from tests import jwt_forge as forge
from tests.conftest import assert_error, url

pytestmark = pytest.mark.django_db(transaction=True)

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


_MAKERS = {"RS256": forge.rsa_key, "ES256": forge.ec_key, "EdDSA": forge.ed25519_key}


@functools.cache
def keypair(algorithm: str, generation: int = 0):
    """A (private, public) PEM pair per algorithm and generation, made once per run."""
    key = _MAKERS[algorithm]()
    return forge.private_pem(key), forge.public_pem(key)


def key_settings(algorithm: str, kid: str | None = None, generation: int = 0) -> dict:
    """JWT_SESSIONS keys for an algorithm; another generation is another key."""
    if algorithm.startswith("HS"):
        size = {"HS256": 32, "HS384": 48, "HS512": 64}[algorithm]
        return {"ALGORITHM": algorithm, "SIGNING_KEY": f"{generation}" * size,
                "KEY_ID": kid}
    private, public = keypair(algorithm, generation)
    return {"ALGORITHM": algorithm, "SIGNING_KEY": private, "VERIFYING_KEY": public,
            "KEY_ID": kid}


ALGORITHMS = ["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_works_end_to_end(api, user, jwt_settings, algorithm):
    jwt_settings(**key_settings(algorithm, kid="key-1"))
    assert check_settings() == []
    data = api.login_ok(user.username)
    header, _claims = forge.parts(data["access"])
    assert header == {"alg": algorithm, "typ": "at+jwt", "kid": "key-1"}
    assert api.whoami(data["access"]).json() == {"id": user.pk}
    fresh = api.refresh_ok(data["refresh"])
    assert api.whoami(fresh["access"]).json() == {"id": user.pk}


def test_no_kid_header_without_key_id(api, user):
    header, _claims = forge.parts(api.login_ok(user.username)["access"])
    assert "kid" not in header


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256", "EdDSA"])
def test_key_rotation_keeps_everyone_logged_in(api, user, jwt_settings, algorithm):
    old = key_settings(algorithm, kid="old")
    jwt_settings(**old)
    before = api.login_ok(user.username)

    new = key_settings(algorithm, kid="new", generation=1)
    retired = old["SIGNING_KEY"] if algorithm.startswith("HS") else old["VERIFYING_KEY"]
    jwt_settings(**new, ADDITIONAL_VERIFYING_KEYS={"old": retired})
    assert check_settings() == []
    assert api.whoami(before["access"]).status_code == 200  # signed by the retired key
    after = api.login_ok(user.username)
    assert forge.parts(after["access"])[0]["kid"] == "new"
    assert api.whoami(after["access"]).status_code == 200
    refreshed = api.refresh_ok(before["refresh"])  # the old session moves to the new key
    assert forge.parts(refreshed["access"])[0]["kid"] == "new"

    jwt_settings(ADDITIONAL_VERIFYING_KEYS={})  # retired key dropped: its tokens die
    assert_error(api.whoami(before["access"]), 401, "token_invalid")
    assert api.whoami(refreshed["access"]).status_code == 200


@pytest.mark.parametrize("algorithm,kty,members", [
    ("RS256", "RSA", {"n", "e"}),
    ("ES256", "EC", {"crv", "x", "y"}),
    ("EdDSA", "OKP", {"crv", "x"}),
])
def test_jwks_lists_public_members_only(api, jwt_settings, algorithm, kty, members):
    current = key_settings(algorithm, kid="k2")
    # A careless setup: the private PEM given as the verifying key of the retired kid.
    retired = key_settings(algorithm, generation=1)["SIGNING_KEY"]
    jwt_settings(**current, ADDITIONAL_VERIFYING_KEYS={"k1": retired})
    resp = api.client.get(url("jwks"))
    assert resp.status_code == 200
    keys = resp.json()["keys"]
    assert sorted(key["kid"] for key in keys) == ["k1", "k2"]
    for key in keys:
        assert set(key) == {"kty", "kid", "alg", "use", *members}, key
        assert (key["kty"], key["alg"], key["use"]) == (kty, algorithm, "sig")
        assert not PRIVATE_MEMBERS & set(key)


@pytest.mark.parametrize("algorithm", ["HS256", "HS512"])
def test_jwks_is_empty_for_hmac(api, jwt_settings, algorithm):
    jwt_settings(**key_settings(algorithm, kid="k"),
                 ADDITIONAL_VERIFYING_KEYS={"old": "s" * 64})
    resp = api.client.get(url("jwks"))
    assert resp.json() == {"keys": []}
    assert b"0000" not in resp.content and b"ssss" not in resp.content


# ------------------------------------------------------------------ system checks
def _check_ids(jwt_settings, **values) -> list[str]:
    jwt_settings(**values)
    return [message.id for message in check_settings()]


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
@pytest.mark.parametrize("missing", ["SIGNING_KEY", "VERIFYING_KEY"])
def test_check_missing_asymmetric_key(jwt_settings, algorithm, missing):
    values = {**key_settings(algorithm), missing: None}
    assert "jwt_sessions.E006" in _check_ids(jwt_settings, **values)


@pytest.mark.parametrize("algorithm", ["none", "HS1024", "RS257", "hs256", ""])
def test_check_unusable_algorithm(jwt_settings, algorithm):
    assert _check_ids(jwt_settings, ALGORITHM=algorithm) == ["jwt_sessions.E004"]


@pytest.mark.parametrize("algorithm,size", [("HS256", 31), ("HS384", 47), ("HS512", 63)])
def test_check_hmac_key_shorter_than_hash(jwt_settings, algorithm, size):
    assert _check_ids(jwt_settings, ALGORITHM=algorithm, SIGNING_KEY="k" * size) == [
        "jwt_sessions.E005"]
    assert _check_ids(jwt_settings, SIGNING_KEY="k" * (size + 1)) == []


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
@pytest.mark.parametrize("broken", ["SIGNING_KEY", "VERIFYING_KEY", "ADDITIONAL"])
def test_check_unparsable_key(jwt_settings, algorithm, broken):
    values = key_settings(algorithm)
    garbage = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"
    if broken == "ADDITIONAL":
        values["ADDITIONAL_VERIFYING_KEYS"] = {"old": garbage}
    else:
        values[broken] = garbage
    assert _check_ids(jwt_settings, **values) == ["jwt_sessions.E018"]


def test_check_key_of_the_wrong_type(jwt_settings):
    rsa_private, rsa_public = keypair("RS256")
    values = {**key_settings("ES256"), "VERIFYING_KEY": rsa_public}
    assert _check_ids(jwt_settings, **values) == ["jwt_sessions.E018"]


def test_check_hmac_additional_keys_too_short(jwt_settings):
    ids = _check_ids(jwt_settings, ADDITIONAL_VERIFYING_KEYS={"old": "short"})
    assert ids == ["jwt_sessions.E005"]


def test_check_pem_as_hmac_secret(jwt_settings):
    rsa_private, _public = keypair("RS256")
    assert _check_ids(jwt_settings, SIGNING_KEY=rsa_private) == ["jwt_sessions.E017"]
