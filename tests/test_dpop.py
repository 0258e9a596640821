"""DPoP (RFC 9449) at login, refresh and the DRF door: binding, and the refusal of every
proof an attacker could send without the key (missing, foreign, replayed, stale, for
another request or token, malformed)."""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from freezegun import freeze_time

from jwt_sessions import api as jwt_api
from jwt_sessions.dpop.errors import DPoPError
from jwt_sessions.models import Session
from tests.conftest import PASSWORD, next_ip, url
from tests.dpop_keys import ProofKey, claims_of, with_header

pytestmark = pytest.mark.django_db

SERVER = "http://testserver"
LOGIN, REFRESH, WHOAMI = f"{SERVER}/auth/login/", f"{SERVER}/auth/refresh/", f"{SERVER}/api/whoami/"


@pytest.fixture
def key() -> ProofKey:
    return ProofKey()


def login(api, user, proof: str | None = None, **extra):
    if proof is not None:
        extra["HTTP_DPOP"] = proof
    return api.login(user.username, **extra)


def bound_login(api, user, key) -> dict:
    resp = login(api, user, key.proof("POST", LOGIN))
    assert resp.status_code == 200, resp.content
    return resp.json()


def call(api, access: str, proof: str | None = None, scheme: str = "DPoP",
         path: str = "/api/whoami/"):
    extra = {"HTTP_AUTHORIZATION": f"{scheme} {access}"}
    if proof is not None:
        extra["HTTP_DPOP"] = proof
    return api.client.get(path, **extra)


def refresh(api, token: str, proof: str | None = None):
    extra = {"HTTP_DPOP": proof} if proof is not None else {}
    return api.refresh(token, **extra)


def assert_whoami_refused_with(api, user, key, **proof) -> None:
    """A fresh bound session's whoami, its proof made with `proof`'s changes, is refused."""
    access = bound_login(api, user, key)["access"]
    assert_dpop_refusal(call(api, access, key.proof("GET", WHOAMI, token=access, **proof)))


def assert_dpop_refusal(resp, code: str = "invalid_dpop_proof", error: str | None = None):
    """401, our body, and a DPoP challenge naming the RFC's error and the algorithms."""
    assert resp.status_code == 401, (resp.status_code, resp.content)
    body = resp.json()
    assert body["code"] == code and body["detail"], body
    challenge = resp["WWW-Authenticate"]
    assert challenge.startswith("DPoP "), challenge
    assert f'error="{error or code}"' in challenge and 'algs="ES256' in challenge, challenge
    return body


# ------------------------------------------------------------------ binding
def test_login_with_a_proof_binds_the_session_to_its_key(api, user, key):
    body = bound_login(api, user, key)
    assert body["token_type"] == "DPoP"
    assert Session.objects.get().dpop_jkt == key.jkt
    assert claims_of(body["access"])["cnf"] == {"jkt": key.jkt}


def test_login_without_a_proof_is_a_bearer_session(api, user):
    body = api.login_ok(user.username)
    assert body["token_type"] == "Bearer"
    assert Session.objects.get().dpop_jkt == ""
    assert "cnf" not in claims_of(body["access"])


def test_a_bound_token_passes_with_a_proof_by_its_key(api, user, key):
    access = bound_login(api, user, key)["access"]
    resp = call(api, access, key.proof("GET", WHOAMI, token=access))
    assert resp.status_code == 200, resp.content
    assert resp.json()["id"] == user.pk


def test_a_bound_token_sent_as_bearer_is_refused(api, user, key):
    access = bound_login(api, user, key)["access"]
    assert_dpop_refusal(call(api, access, scheme="Bearer"), "token_invalid", "invalid_token")
    # Even with a valid proof beside it: the scheme says "anyone holding this may use it".
    resp = call(api, access, key.proof("GET", WHOAMI, token=access), scheme="Bearer")
    assert_dpop_refusal(resp, "token_invalid", "invalid_token")


def test_a_copied_bound_token_without_a_proof_is_refused(api, user, key):
    access = bound_login(api, user, key)["access"]
    assert_dpop_refusal(call(api, access))


def test_a_proof_by_another_key_is_refused(api, user, key):
    access = bound_login(api, user, key)["access"]
    thief = ProofKey()
    assert_dpop_refusal(call(api, access, thief.proof("GET", WHOAMI, token=access)))


def test_a_proof_whose_jwk_names_the_right_key_but_another_signs_is_refused(api, user, key):
    access = bound_login(api, user, key)["access"]
    thief = ProofKey()
    forged = thief.proof("GET", WHOAMI, token=access, header={"jwk": key.jwk})
    assert_dpop_refusal(call(api, access, forged))


def test_a_replayed_proof_is_refused(api, user, key):
    access = bound_login(api, user, key)["access"]
    proof = key.proof("GET", WHOAMI, token=access)
    assert call(api, access, proof).status_code == 200
    body = assert_dpop_refusal(call(api, access, proof))
    assert "already used" in body["detail"]


def test_a_replayed_login_proof_is_refused(api, user, key):
    proof = key.proof("POST", LOGIN)
    assert login(api, user, proof).status_code == 200
    assert_dpop_refusal(login(api, user, proof))
    assert Session.objects.count() == 1


@pytest.mark.parametrize("change", [
    {"htm": "POST"},
    {"htu": f"{SERVER}/api/me/"},
    {"htu": "http://elsewhere.example/api/whoami/"},
    {"htu": "https://testserver/api/whoami/"},
    {"htu": "not a uri"},
    {"ath": "A" * 43},
])
def test_a_proof_for_another_request_or_token_is_refused(api, user, key, change):
    assert_whoami_refused_with(api, user, key, claims=change)


def test_a_proof_without_ath_is_refused_with_an_access_token(api, user, key):
    access = bound_login(api, user, key)["access"]
    assert_dpop_refusal(call(api, access, key.proof("GET", WHOAMI)))


def test_a_proof_for_another_access_token_of_the_same_key_is_refused(api, user, key):
    first = bound_login(api, user, key)["access"]
    second = bound_login(api, user, key)["access"]
    assert_dpop_refusal(call(api, second, key.proof("GET", WHOAMI, token=first)))


@pytest.mark.parametrize("age", [-120, 120])
def test_a_stale_or_future_iat_is_refused(api, user, key, age):
    assert_whoami_refused_with(api, user, key, iat=int(time.time()) - age)


def test_iat_within_the_window_passes_and_the_window_is_a_setting(api, user, key,
                                                                  jwt_settings):
    access = bound_login(api, user, key)["access"]
    proof = key.proof("GET", WHOAMI, token=access, iat=int(time.time()) - 30)
    assert call(api, access, proof).status_code == 200
    jwt_settings(DPOP={"PROOF_MAX_AGE": timedelta(seconds=10)})
    proof = key.proof("GET", WHOAMI, token=access, iat=int(time.time()) - 30)
    assert_dpop_refusal(call(api, access, proof))


@pytest.mark.parametrize("header", [
    {"typ": None}, {"typ": "JWT"}, {"typ": "at+jwt"}, {"jwk": None}, {"jwk": "a string"},
    {"crit": ["exp"]},
])
def test_a_proof_with_a_bad_header_is_refused(api, user, key, header):
    assert_whoami_refused_with(api, user, key, header=header)


def test_a_proof_carrying_a_private_key_is_refused(api, user, key):
    import json

    from jwt.algorithms import ECAlgorithm

    private_jwk = json.loads(ECAlgorithm.to_jwk(key.private))
    assert "d" in private_jwk
    assert_whoami_refused_with(api, user, key, header={"jwk": private_jwk})


def test_alg_none_hmac_and_curve_mismatch_are_refused(api, user, key):
    import jwt

    access = bound_login(api, user, key)["access"]
    claims = {"jti": "x1", "htm": "GET", "htu": WHOAMI, "iat": int(time.time()),
              "ath": claims_of_ath(access)}
    unsigned = jwt.encode(claims, None, algorithm="none",
                          headers={"typ": "dpop+jwt", "jwk": key.jwk})
    assert_dpop_refusal(call(api, access, unsigned))
    hmac = jwt.encode(claims, "k" * 32, algorithm="HS256",
                      headers={"typ": "dpop+jwt", "jwk": {"kty": "oct", "k": "a2s"}})
    assert_dpop_refusal(call(api, access, hmac))
    # The header claims ES384 over a P-256 key: the alg must fit the key.
    assert_dpop_refusal(call(api, access, with_header(
        key.proof("GET", WHOAMI, token=access), alg="ES384")))


def claims_of_ath(access: str) -> str:
    from tests.dpop_keys import ath

    return ath(access)


@pytest.mark.parametrize("value", [
    "", "garbage", "a.b.c", "a.b", "..", "x" * 9000, "\u00e9.\u00e9.\u00e9",
])
def test_malformed_proofs_are_a_401_never_a_500(api, user, key, value):
    access = bound_login(api, user, key)["access"]
    assert_dpop_refusal(call(api, access, value))
    assert_dpop_refusal(login(api, user, value))


def test_two_dpop_headers_are_refused(api, user, key):
    access = bound_login(api, user, key)["access"]
    one, two = (key.proof("GET", WHOAMI, token=access) for _ in range(2))
    assert_dpop_refusal(call(api, access, f"{one}, {two}"))


def test_a_proof_is_for_the_uri_without_query_and_compared_normalised(api, user, key):
    access = bound_login(api, user, key)["access"]
    resp = call(api, access, key.proof("GET", WHOAMI, token=access),
                path="/api/whoami/?page=2")
    assert resp.status_code == 200, resp.content
    resp = call(api, access, key.proof("GET", "HTTP://TestServer:80/api/%77hoami/",
                                       token=access))
    assert resp.status_code == 200, resp.content


@pytest.mark.parametrize("alg", ["EdDSA", "RS256", "PS256", "ES384"])
def test_other_algorithms_bind_and_pass(api, user, alg):
    key = ProofKey(alg)
    access = bound_login(api, user, key)["access"]
    assert call(api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200


def test_an_algorithm_left_out_of_the_setting_is_refused(api, user, jwt_settings):
    jwt_settings(DPOP={"ALGORITHMS": ["ES256"]})
    resp = login(api, user, ProofKey("EdDSA").proof("POST", LOGIN))
    assert_dpop_refusal(resp)
    assert resp["WWW-Authenticate"].endswith('algs="ES256"')


def test_a_small_rsa_key_is_refused(api, user):
    key = ProofKey("RS256", rsa_bits=1024)
    assert_dpop_refusal(login(api, user, key.proof("POST", LOGIN)))


def test_a_bearer_token_sent_as_dpop_is_refused(api, user, key):
    access = api.login_ok(user.username)["access"]
    resp = call(api, access, key.proof("GET", WHOAMI, token=access))
    assert_dpop_refusal(resp, "token_invalid", "invalid_token")


def test_bearer_sessions_still_work_and_get_the_bearer_challenge(api, user):
    access = api.login_ok(user.username)["access"]
    assert call(api, access, scheme="Bearer").status_code == 200
    assert api.client.get("/api/whoami/")["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_proof_at_login_costs_no_password_check(api, user, key, monkeypatch):
    import jwt_sessions.views as views

    checked = []
    monkeypatch.setattr(views, "authenticate", lambda *a, **k: checked.append(1))
    assert_dpop_refusal(login(api, user, key.proof("POST", REFRESH)))
    assert checked == [] and Session.objects.count() == 0


# ------------------------------------------------------------------ refresh
def test_a_bound_sessions_refresh_needs_a_proof_by_its_key(api, user, key):
    pair = bound_login(api, user, key)
    assert_dpop_refusal(refresh(api, pair["refresh"]))
    assert_dpop_refusal(refresh(api, pair["refresh"], ProofKey().proof("POST", REFRESH)))
    resp = refresh(api, pair["refresh"], key.proof("POST", REFRESH))
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access"])["cnf"] == {"jkt": key.jkt}
    session = Session.objects.get()
    assert session.dpop_jkt == key.jkt and session.revoked_at is None


def test_a_thief_with_the_refresh_token_but_not_the_key_changes_nothing(api, user, key):
    pair = bound_login(api, user, key)
    for _ in range(3):  # first through Redis, then through the database
        assert_dpop_refusal(refresh(api, pair["refresh"], ProofKey().proof("POST", REFRESH)))
    assert call(api, pair["access"], key.proof("GET", WHOAMI, token=pair["access"])
                ).status_code == 200
    resp = refresh(api, pair["refresh"], key.proof("POST", REFRESH))
    assert resp.status_code == 200, resp.content
    assert Session.objects.get().revoked_at is None


def test_a_superseded_refresh_token_without_the_key_does_not_end_the_session(
        api, user, key, jwt_settings):
    jwt_settings(REFRESH_REUSE_GRACE=0)
    pair = bound_login(api, user, key)
    assert refresh(api, pair["refresh"], key.proof("POST", REFRESH)).status_code == 200
    assert_dpop_refusal(refresh(api, pair["refresh"], ProofKey().proof("POST", REFRESH)))
    assert Session.objects.get().revoked_at is None


def test_a_bearer_session_that_refreshes_with_a_proof_becomes_bound(api, user, key):
    pair = api.login_ok(user.username)
    resp = refresh(api, pair["refresh"], key.proof("POST", REFRESH))
    assert resp.status_code == 200, resp.content
    assert resp.json()["token_type"] == "DPoP"
    assert Session.objects.get().dpop_jkt == key.jkt
    assert_dpop_refusal(refresh(api, resp.json()["refresh"]))


def test_refresh_through_the_database_checks_the_binding_too(api, user, key, redis_conn):
    pair = bound_login(api, user, key)
    redis_conn.flushdb()
    assert_dpop_refusal(refresh(api, pair["refresh"]))
    resp = refresh(api, pair["refresh"], key.proof("POST", REFRESH))
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP"


# ------------------------------------------------------------------ required
def test_required_refuses_logins_and_tokens_without_a_key(api, user, key, jwt_settings):
    bearer_pair = api.login_ok(user.username)
    jwt_settings(DPOP={"REQUIRED": True})
    assert_dpop_refusal(login(api, user))
    assert_dpop_refusal(call(api, bearer_pair["access"], scheme="Bearer"), "token_invalid",
                        "invalid_token")
    assert_dpop_refusal(refresh(api, bearer_pair["refresh"]))
    no_credentials = api.client.get("/api/whoami/")
    assert no_credentials.status_code == 401
    assert no_credentials["WWW-Authenticate"].startswith("DPoP algs=")
    access = bound_login(api, user, key)["access"]
    assert call(api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200


# ------------------------------------------------------------------ nonces
def test_server_nonces(api, user, key, jwt_settings):
    jwt_settings(DPOP={"NONCE": True})
    first = login(api, user, key.proof("POST", LOGIN))
    assert_dpop_refusal(first, "use_dpop_nonce")
    nonce = first["DPoP-Nonce"]
    resp = login(api, user, key.proof("POST", LOGIN, nonce=nonce))
    assert resp.status_code == 200, resp.content
    assert resp["DPoP-Nonce"]
    access = resp.json()["access"]
    assert call(api, access, key.proof("GET", WHOAMI, token=access, nonce=nonce)
                ).status_code == 200
    forged = assert_dpop_refusal(call(api, access, key.proof(
        "GET", WHOAMI, token=access, nonce="A" * 32)), "use_dpop_nonce")
    assert forged


def test_a_nonce_expires_after_its_lifetime(api, user, key, jwt_settings):
    jwt_settings(DPOP={"NONCE": True, "NONCE_LIFETIME": 60})
    with freeze_time("2026-01-01 12:00:00") as clock:
        nonce = login(api, user, key.proof("POST", LOGIN))["DPoP-Nonce"]
        clock.tick(150)
        resp = login(api, user, key.proof("POST", LOGIN, nonce=nonce))
        assert_dpop_refusal(resp, "use_dpop_nonce")
        assert resp["DPoP-Nonce"] != nonce


def test_a_resource_refusal_carries_the_nonce_with_the_projects_exception_handler(
        api, user, key, jwt_settings, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "EXCEPTION_HANDLER": "jwt_sessions.exceptions.exception_handler"}
    jwt_settings(DPOP={"NONCE": True})
    nonce = login(api, user, key.proof("POST", LOGIN))["DPoP-Nonce"]
    access = login(api, user, key.proof("POST", LOGIN, nonce=nonce)).json()["access"]
    resp = call(api, access, key.proof("GET", WHOAMI, token=access))
    assert_dpop_refusal(resp, "use_dpop_nonce")
    assert resp["DPoP-Nonce"]


# ------------------------------------------------------------------ other doors
def test_introspection_names_the_key_of_a_bound_token(api, user, key, django_user_model):
    from django.contrib.auth.models import Permission

    pair = bound_login(api, user, key)
    gateway = django_user_model.objects.create_user("gateway", password=PASSWORD)
    gateway.user_permissions.add(Permission.objects.get(codename="introspect_session"))
    gateway_access = api.login_ok("gateway")["access"]
    for token in (pair["access"], pair["refresh"]):
        resp = api.post(url("introspect"), {"token": token}, HTTP_AUTHORIZATION=
                        f"Bearer {gateway_access}", REMOTE_ADDR=next_ip())
        assert resp.json()["active"] is True
        assert resp.json()["cnf"] == {"jkt": key.jkt}
    resp = api.post(url("introspect"), {"token": gateway_access},
                    HTTP_AUTHORIZATION=f"Bearer {gateway_access}")
    assert "cnf" not in resp.json()


def test_a_local_cache_hit_still_checks_the_proof(api, user, key, jwt_settings):
    jwt_settings(LOCAL_CACHE={"max_age": timedelta(seconds=30), "max_entries": 100})
    access = bound_login(api, user, key)["access"]
    proof = key.proof("GET", WHOAMI, token=access)
    assert call(api, access, proof).status_code == 200
    assert call(api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200
    assert_dpop_refusal(call(api, access, proof))
    assert_dpop_refusal(call(api, access))
    assert_dpop_refusal(call(api, access, scheme="Bearer"), "token_invalid", "invalid_token")


def test_api_aauthenticate_needs_the_proof_of_a_bound_token(api, user, key):
    access = bound_login(api, user, key)["access"]
    with pytest.raises(DPoPError):
        asyncio.run(jwt_api.aauthenticate(access))
    claims = asyncio.run(jwt_api.aauthenticate(
        access, dpop_proof=key.proof("GET", WHOAMI, token=access), method="GET", uri=WHOAMI))
    assert claims.dpop_jkt == key.jkt
    bearer = api.login_ok(user.username)["access"]
    assert asyncio.run(jwt_api.aauthenticate(bearer)).dpop_jkt is None


def test_api_issue_tokens_binds_from_the_requests_proof(user, key, rf):
    request = rf.post("/custom/login/", HTTP_DPOP=key.proof("POST", f"{SERVER}/custom/login/"))
    assert jwt_api.issue_tokens(user, request)["token_type"] == "DPoP"
    assert jwt_api.issue_tokens(user)["token_type"] == "Bearer"


def test_replay_is_still_caught_in_this_process_while_redis_is_down(api, user, key):
    from jwt_sessions.redis.mirror import circuit

    access = bound_login(api, user, key)["access"]
    circuit.trip()
    proof = key.proof("GET", WHOAMI, token=access)
    assert call(api, access, proof).status_code == 200
    assert_dpop_refusal(call(api, access, proof))


def test_a_proof_used_while_redis_was_down_is_spent_in_redis_once_it_is_back(
        api, user, key, redis_conn):
    """The process's memory covers the outage; Redis, back, must know what passed
    meanwhile, or the proof passes again (at another process, or this one)."""
    from jwt_sessions.redis import mirror
    from jwt_sessions.redis.mirror import circuit

    access = bound_login(api, user, key)["access"]
    circuit.trip()
    proof = key.proof("GET", WHOAMI, token=access)
    assert call(api, access, proof).status_code == 200
    circuit.down_until = 0.0  # the retry interval has passed: Redis is asked again
    assert_dpop_refusal(call(api, access, proof))  # the same process, Redis back

    circuit.trip()
    proof = key.proof("GET", WHOAMI, token=access)
    assert call(api, access, proof).status_code == 200
    circuit.down_until = 0.0
    assert call(api, access, key.proof("GET", WHOAMI, token=access)).status_code == 200
    assert not circuit.needs_replay and not mirror._claimed_while_down  # written back
    claims = [k for k in redis_conn.scan_iter(match="*:p:*") if redis_conn.pttl(k) > 0]
    assert claims and all(redis_conn.pttl(k) <= 61_000 for k in claims)
    mirror._claimed_while_down.clear()  # as another process, which never saw it
    assert_dpop_refusal(call(api, access, proof))


def test_redis_down_under_deny_is_a_503(api, user, key, jwt_settings):
    from jwt_sessions.redis.mirror import circuit

    jwt_settings(REDIS_FAILURE_POLICY="deny")
    circuit.trip()
    resp = login(api, user, key.proof("POST", LOGIN))
    assert resp.status_code == 503 and resp.json()["code"] == "service_unavailable"


# ------------------------------------------------------------------ cost
def test_a_bound_request_costs_one_redis_round_trip_and_no_sql(api, user, key, round_trips,
                                                                django_assert_num_queries):
    access = bound_login(api, user, key)["access"]
    call(api, access, key.proof("GET", WHOAMI, token=access))  # warm: stats flushed
    proof = key.proof("GET", WHOAMI, token=access)
    round_trips[0] = 0
    with django_assert_num_queries(0):
        assert call(api, access, proof).status_code == 200
    assert round_trips[0] == 1
    round_trips[0] = 0
    assert_dpop_refusal(call(api, access, proof))  # the replay is told in that round trip
    assert round_trips[0] == 1


def test_async_replay_is_caught_in_the_access_round_trip(api, user, key):
    from jwt_sessions.redis.store import astore

    access = bound_login(api, user, key)["access"]
    proof = key.proof("GET", WHOAMI, token=access)

    async def twice():
        try:
            await jwt_api.aauthenticate(access, dpop_proof=proof, uri=WHOAMI)
            with pytest.raises(DPoPError):
                await jwt_api.aauthenticate(access, dpop_proof=proof, uri=WHOAMI)
        finally:
            await astore.aclose()

    asyncio.run(twice())


def test_a_login_with_a_valid_proof_and_a_wrong_password_leaves_no_redis_key(
        api, user, key, redis_conn):
    redis_conn.flushdb()
    resp = api.login(user.username, password="wrong", HTTP_DPOP=key.proof("POST", LOGIN))
    assert resp.status_code == 401 and resp.json()["code"] == "invalid_credentials"
    assert [k for k in redis_conn.keys("*") if b":p:" in k or k.startswith(b"jwts:p:")] == []


def test_reauthentication_keeps_the_binding(api, user, key):
    access = bound_login(api, user, key)["access"]
    target = f"{SERVER}{url('reauthenticate')}"
    resp = api.post(url("reauthenticate"), {"password": PASSWORD},
                    HTTP_AUTHORIZATION=f"DPoP {access}",
                    HTTP_DPOP=key.proof("POST", target, token=access), REMOTE_ADDR=next_ip())
    assert resp.status_code == 200, resp.content
    assert resp.json()["token_type"] == "DPoP"
    assert claims_of(resp.json()["access"])["cnf"] == {"jkt": key.jkt}
    refused = api.post(url("reauthenticate"), {"password": PASSWORD},
                       HTTP_AUTHORIZATION=f"Bearer {resp.json()['access']}")
    assert_dpop_refusal(refused, "token_invalid", "invalid_token")


def test_a_subclass_overriding_get_validated_token_keeps_the_binding(api, user, key, rf):
    from jwt_sessions.authentication import JWTSessionAuthentication

    class Audited(JWTSessionAuthentication):
        seen: list = []

        def get_validated_token(self, raw_token):
            claims = super().get_validated_token(raw_token)
            self.seen.append(claims.session_id)
            return claims

    access = bound_login(api, user, key)["access"]
    request = rf.get("/api/whoami/", HTTP_AUTHORIZATION=f"DPoP {access}",
                     HTTP_DPOP=key.proof("GET", WHOAMI, token=access))
    assert Audited().authenticate(request)[1].dpop_jkt == key.jkt
    with pytest.raises(DPoPError):  # no proof: the override cannot skip the check
        Audited().authenticate(rf.get("/api/whoami/", HTTP_AUTHORIZATION=f"DPoP {access}"))
    with pytest.raises(DPoPError):  # called on its own, a token is a bare Bearer token
        JWTSessionAuthentication().get_validated_token(access)


def test_the_metadata_names_the_accepted_proof_algorithms(jwt_settings):
    from django.test import Client

    body = Client().get(url("authorization_server_metadata")).json()
    assert body["dpop_signing_alg_values_supported"][0] == "ES256"
    jwt_settings(DPOP={"ALGORITHMS": ["EdDSA"]})
    body = Client().get(url("authorization_server_metadata")).json()
    assert body["dpop_signing_alg_values_supported"] == ["EdDSA"]
