"""An attacker's review of Shared Signals, introspection and revocation, as tests.

Each test is one attack: a forged, replayed or malformed Security Event Token sent to
the receiver, a JWKS that misbehaves, a stream of someone else's, a subject that could
name the wrong user, a weak caller of introspection, a revocation of someone else's
session. Bad input must get a 4xx JSON answer (never a 500) and must never end or keep
alive a session it should not. An attack that still works is marked `xfail(strict=True)`
with the reason "HOLE: ...".
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from django.contrib.auth.models import Permission
from django.test import Client
from joserfc import jws
from joserfc.jwk import ECKey, OctKey

from jwt_sessions.models import Session
from jwt_sessions.shared_signals import jwks as jwks_cache
from jwt_sessions.shared_signals.models import SsfOutboxEvent, SsfReceivedEvent, SsfStream
from tests.conftest import bearer, url
from tests.jwt_forge import b64url, segment
from tests.ssf_helpers import (
    CREDENTIAL_CHANGE,
    ISSUER,
    PEER,
    PEER_AUDIENCE,
    PEER_KEY,
    POLL,
    PUSH,
    SESSION_REVOKED,
    peer_jwks,
    send_json,
    shared_signals,
)
from tests.token_endpoints import grant_introspection, introspect, post_form

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ssf_on")]

OTHER = "https://other-peer.example.test/"  # a second configured transmitter
OTHER_AUDIENCE = "https://auth.example.test/other-receiver"
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "other-1"})
NOOP = "https://example.test/noop-event"


# ------------------------------------------------------------------ helpers
def receive(token: str | bytes):
    # A 500 is an answer here, not an exception: the assertions below then fail on it.
    return Client(raise_request_exception=False).post(
        url("ssf_receive"), data=token, content_type="application/secevent+jwt")


def refused(resp, *errs: str) -> dict:
    """A 4xx JSON refusal (RFC 8935 body, its `err` one of `errs`), never a 500 nor an
    HTML page."""
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.content[:300])
    assert resp["Content-Type"].startswith("application/json"), resp["Content-Type"]
    body = resp.json()
    if errs:
        assert body["err"] in errs, body
    return body


def live(user) -> int:
    return Session.objects.active().filter(user=user).count()


def iss_sub(user, iss: str = PEER) -> dict:
    return {"format": "iss_sub", "iss": iss, "sub": str(user.pk)}


def claims_for(sub_id=None, **extra) -> dict:
    claims = {"iss": PEER, "aud": PEER_AUDIENCE, "jti": secrets.token_hex(8),
              "iat": int(time.time()), "events": {SESSION_REVOKED: {}}}
    if sub_id is not None:
        claims["sub_id"] = sub_id
    claims.update(extra)
    return claims


def signed(claims: dict | bytes, key=PEER_KEY, **header) -> str:
    """A compact ES256 JWS signed by `key` by hand (any header, any payload bytes: no
    library refuses to make it)."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    protected = {"alg": "ES256", "typ": "secevent+jwt", "kid": key.kid, **header}
    if protected.get("kid") is None:
        protected.pop("kid")
    data = f"{segment(protected)}.{b64url(payload)}".encode()
    r, s = decode_dss_signature(key.private_key.sign(data, ec.ECDSA(hashes.SHA256())))
    return f"{data.decode()}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def unsigned(header: dict, payload: bytes, signature: bytes = b"sig") -> str:
    return f"{segment(header)}.{b64url(payload)}.{b64url(signature)}"


def two_transmitters(settings, **extra) -> None:
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "SHARED_SIGNALS": shared_signals(
        TRANSMITTERS=[
            {"issuer": PEER, "jwks": peer_jwks(), "audience": PEER_AUDIENCE},
            {"issuer": OTHER, "jwks": peer_jwks(OTHER_KEY), "audience": OTHER_AUDIENCE}],
        **extra)}


def transmitter_at(settings, jwks_url: str, **extra) -> None:
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "SHARED_SIGNALS": shared_signals(
        TRANSMITTERS=[{"issuer": PEER, "jwks": jwks_url, "audience": PEER_AUDIENCE}],
        **extra)}
    jwks_cache.forget()


class LocalServer:
    """A 127.0.0.1 HTTP server that counts GETs and answers what it is told."""

    def __init__(self, body=None, status: int = 200, location: str | None = None) -> None:
        self.body, self.status, self.location, self.hits = body, status, location, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits += 1
                payload = (outer.body if isinstance(outer.body, bytes)
                           else json.dumps(outer.body).encode())
                self.send_response(outer.status)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_server():
    servers: list[LocalServer] = []

    def start(*args, **kwargs) -> LocalServer:
        servers.append(LocalServer(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
    jwks_cache.forget()


@pytest.fixture
def victim(make_user, api):
    """A user with two live sessions that no refused SET may touch."""
    user = make_user(email="victim@example.test")
    user.sessions_ = [api.login_ok(user.username) for _ in range(2)]
    return user


def still_alive(api, user) -> None:
    assert live(user) == 2
    assert all(api.whoami(s["access"]).status_code == 200 for s in user.sessions_)


# ------------------------------------------------------------------ forged signatures
def test_alg_none_is_refused(victim, api):
    token = unsigned({"alg": "none", "typ": "secevent+jwt"},
                     json.dumps(claims_for(iss_sub(victim))).encode(), b"")
    refused(receive(token), "invalid_key")
    still_alive(api, victim)


@pytest.mark.parametrize("alg", ["HS256", "HS512", "None", "", "es256"])
def test_non_asymmetric_or_misspelt_algs_are_refused(victim, api, alg):
    token = unsigned({"alg": alg, "typ": "secevent+jwt", "kid": "peer-1"},
                     json.dumps(claims_for(iss_sub(victim))).encode())
    refused(receive(token), "invalid_key")
    still_alive(api, victim)


def test_an_embedded_jwk_is_not_trusted(victim, api):
    """The attacker signs with its own key and puts that key in the header (`jwk`)."""
    mine = ECKey.generate_key("P-256", parameters={"kid": "peer-1"})
    token = signed(claims_for(iss_sub(victim)), key=mine, jwk=mine.as_dict(private=False))
    refused(receive(token), "invalid_key")
    still_alive(api, victim)


@pytest.mark.parametrize("member", ["jku", "x5u"])
def test_a_jku_or_x5u_is_never_fetched(victim, api, local_server, member):
    """SSRF: a header URL names where to get keys; only the configured JWKS counts."""
    mine = ECKey.generate_key("P-256", parameters={"kid": "peer-1"})
    server = local_server(peer_jwks(mine))
    token = signed(claims_for(iss_sub(victim)), key=mine, **{member: server.url})
    refused(receive(token), "invalid_key")
    assert server.hits == 0
    still_alive(api, victim)


def test_another_transmitters_key_does_not_sign_for_this_one(settings, victim, api):
    """iss names PEER, the signature (and kid) is OTHER's: both are configured."""
    two_transmitters(settings)
    refused(receive(signed(claims_for(iss_sub(victim)), key=OTHER_KEY)), "invalid_key")
    still_alive(api, victim)


def test_a_set_of_one_transmitter_is_not_for_the_others_audience(settings, victim, api):
    two_transmitters(settings)
    token = signed(claims_for(iss_sub(victim), aud=OTHER_AUDIENCE))
    refused(receive(token), "invalid_audience")
    still_alive(api, victim)


@pytest.mark.parametrize("kid", [None, "../../peer-1", "PEER-1", "peer-1 ", 1, ["peer-1"],
                                 {"kid": "peer-1"}])
def test_kid_tricks_with_two_keys_are_refused(settings, victim, api, kid):
    """The transmitter publishes two keys; a SET signed by neither, with a kid that is
    missing, a near-miss or not a string, is refused (not a 500, not the first key)."""
    second = ECKey.generate_key("P-256", parameters={"kid": "peer-2"})
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "SHARED_SIGNALS": shared_signals(
        TRANSMITTERS=[{"issuer": PEER, "audience": PEER_AUDIENCE,
                       "jwks": {"keys": [*peer_jwks()["keys"],
                                         second.as_dict(private=False)]}}])}
    mine = ECKey.generate_key("P-256")
    token = signed(claims_for(iss_sub(victim)), key=mine, kid=kid)
    refused(receive(token), "invalid_key", "invalid_request")
    still_alive(api, victim)


def test_an_hmac_key_in_the_jwks_signs_nothing(settings, victim, api):
    """A JWKS that holds a symmetric key (a mistake, or a hostile JWKS URL): a SET MAC'd
    with it is still no signature of the transmitter."""
    secret = OctKey.generate_key(256, parameters={"kid": "peer-1"})
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "SHARED_SIGNALS": shared_signals(
        TRANSMITTERS=[{"issuer": PEER, "audience": PEER_AUDIENCE,
                       "jwks": {"keys": [secret.as_dict(private=True)]}}])}
    token = jws.serialize_compact({"alg": "HS256", "typ": "secevent+jwt", "kid": "peer-1"},
                                  json.dumps(claims_for(iss_sub(victim))).encode(), secret,
                                  algorithms=["HS256"])
    refused(receive(token), "invalid_key")
    still_alive(api, victim)


def test_a_header_alg_that_is_not_the_keys_is_refused(victim, api):
    """The header says ES384 over a P-256 signature by the genuine key: not verified."""
    genuine = signed(claims_for(iss_sub(victim)))
    header, payload, signature = genuine.split(".")
    forged = f"{segment({'alg': 'ES384', 'typ': 'secevent+jwt', 'kid': 'peer-1'})}." \
             f"{payload}.{signature}"
    refused(receive(forged), "invalid_key")
    still_alive(api, victim)


def test_a_signature_moved_onto_other_claims_is_refused(victim, api, user):
    """A genuine SET about `user`, its signature spliced onto claims naming `victim`."""
    genuine = signed(claims_for(iss_sub(user), events={NOOP: {}}))
    header, _, signature = genuine.split(".")
    forged = f"{header}.{b64url(json.dumps(claims_for(iss_sub(victim))).encode())}.{signature}"
    refused(receive(forged), "invalid_key")
    still_alive(api, victim)


@pytest.mark.parametrize("header", [{"crit": ["exp"]}, {"b64": False, "crit": ["b64"]},
                                    {"typ": "JWT"}, {"typ": "at+jwt"}, {"typ": None}])
def test_header_tricks_are_refused(victim, api, header):
    refused(receive(signed(claims_for(iss_sub(victim)), **header)), "invalid_request")
    still_alive(api, victim)


def test_the_claims_iss_must_be_exactly_a_configured_issuer(victim, api):
    for iss in [PEER.rstrip("/"), PEER.upper(), PEER + " ", [PEER], {"iss": PEER}, None]:
        refused(receive(signed(claims_for(iss_sub(victim), iss=iss))), "invalid_issuer")
    still_alive(api, victim)


@pytest.mark.parametrize("aud", [PEER_AUDIENCE + "/", PEER_AUDIENCE.upper(),
                                 {"aud": PEER_AUDIENCE}, [[PEER_AUDIENCE]], None, 1])
def test_near_miss_audiences_are_refused(victim, api, aud):
    refused(receive(signed(claims_for(iss_sub(victim), aud=aud))), "invalid_audience")
    still_alive(api, victim)


# ------------------------------------------------------------------ time and replay
@pytest.mark.parametrize("iat", [int(time.time()) + 3600, 2**62, float(int(time.time())),
                                 str(int(time.time())), True, None, [1]])
def test_strange_iats_are_refused(victim, api, iat):
    claims = claims_for(iss_sub(victim), iat=iat)
    if iat is None:
        del claims["iat"]
    refused(receive(signed(claims)), "invalid_request")
    still_alive(api, victim)


def test_an_iat_beyond_float_range_is_a_400_not_a_500(victim, api):
    claims = claims_for(iss_sub(victim), iat=-(10**400))
    refused(receive(signed(claims)), "invalid_request")
    still_alive(api, victim)


def test_a_transmitter_a_few_seconds_ahead_is_still_heard(victim):
    token = signed(claims_for(iss_sub(victim), iat=int(time.time()) + 5))
    assert receive(token).status_code == 202
    assert live(victim) == 0


def test_an_expired_set_is_refused(victim, api):
    token = signed(claims_for(iss_sub(victim), exp=int(time.time()) - 10))
    refused(receive(token), "invalid_request")
    still_alive(api, victim)


def test_a_set_older_than_retention_is_refused_even_with_a_fresh_jti(settings, victim, api):
    """The receiver forgets jtis after RETENTION; an older SET cannot be told from a
    replay, so it is refused whatever its jti."""
    token = signed(claims_for(iss_sub(victim), iat=int(time.time()) - 8 * 86400))
    refused(receive(token), "invalid_request")
    still_alive(api, victim)


def test_a_replay_with_a_reordered_payload_is_still_a_replay(victim, api):
    """Same issuer and jti, other bytes (a second signature over reordered claims): the
    jti decides, the first SET is the only one acted on."""
    claims = claims_for(iss_sub(victim), jti="replayed", events={NOOP: {}})
    assert receive(signed(claims)).status_code == 202
    reordered = {**dict(reversed(list(claims.items()))), "events": {CREDENTIAL_CHANGE: {}}}
    assert receive(signed(reordered)).status_code == 202
    still_alive(api, victim)


def test_one_transmitter_cannot_burn_anothers_jtis(settings, victim):
    """jtis are unique per issuer: OTHER sending jti "x" first does not make PEER's
    genuine SET "x" look like a replay."""
    two_transmitters(settings)
    other = claims_for(iss_sub(victim, OTHER), iss=OTHER, aud=OTHER_AUDIENCE, jti="x",
                       events={NOOP: {}})
    assert receive(signed(other, key=OTHER_KEY)).status_code == 202
    assert receive(signed(claims_for(iss_sub(victim), jti="x"))).status_code == 202
    assert live(victim) == 0


def test_a_jti_of_strange_shape_is_refused(victim, api):
    for jti in ["", "x" * 201, 7, ["a"], {"a": 1}]:
        refused(receive(signed(claims_for(iss_sub(victim), jti=jti))), "invalid_request")
    still_alive(api, victim)
    assert not SsfReceivedEvent.objects.exists()


# ------------------------------------------------------------------ size and nesting
def test_a_deeply_nested_payload_is_a_400(victim, api):
    payload = b'{"iss": "' + PEER.encode() + b'", "x": ' + b"[" * 20000 + b"]" * 20000 + b"}"
    token = unsigned({"alg": "ES256", "typ": "secevent+jwt", "kid": "peer-1"}, payload)
    assert len(token) < 64 * 1024
    refused(receive(token), "invalid_request")
    still_alive(api, victim)


def test_a_deeply_nested_header_is_a_400(victim, api):
    header = b'{"alg": "ES256", "x": ' + b"[" * 20000 + b"]" * 20000 + b"}"
    token = f"{b64url(header)}.{b64url(b'{}')}.{b64url(b'sig')}"
    assert len(token) < 64 * 1024
    refused(receive(token), "invalid_request")
    still_alive(api, victim)


def test_a_body_just_over_the_set_limit_is_refused(victim, api):
    big = signed(claims_for(iss_sub(victim), padding="x" * (64 * 1024)))
    refused(receive(big), "invalid_request")
    still_alive(api, victim)


def test_a_body_over_djangos_upload_limit_is_a_json_refusal(victim, api):
    refused(receive(b"a" * (3 * 1024 * 1024)), "invalid_request")
    still_alive(api, victim)


@pytest.mark.parametrize("body", [b"a.b", b"a.b.c.d", b"...", b"\x00.\x00.\x00",
                                  b"eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln", b" " * 10,
                                  b"e30.W10.c2ln"])  # {} header, [] payload
def test_malformed_compact_jws_is_invalid_request(victim, api, body):
    refused(receive(body), "invalid_request")
    still_alive(api, victim)


@pytest.mark.parametrize("events", [[SESSION_REVOKED], "session-revoked",
                                    {SESSION_REVOKED: []}, {SESSION_REVOKED: "x"},
                                    {SESSION_REVOKED: {}, CREDENTIAL_CHANGE: None}])
def test_events_that_are_not_an_object_of_objects_are_refused(victim, api, events):
    refused(receive(signed(claims_for(iss_sub(victim), events=events))), "invalid_request")
    still_alive(api, victim)


@pytest.mark.parametrize("sub_id", [[], "victim", 7, {"format": "complex", "user": []},
                                    {"format": "complex", "session": "x"},
                                    {"format": "complex", "user": {"format": "complex",
                                                                   "user": {"format": "x"}}},
                                    {"format": "iss_sub", "iss": PEER, "sub": 5},
                                    {"format": "email", "email": "x" * 501}])
def test_malformed_subjects_are_refused_and_end_nothing(victim, api, sub_id):
    refused(receive(signed(claims_for(sub_id))), "invalid_request")
    still_alive(api, victim)


@pytest.mark.parametrize("fmt", [["iss_sub"], {"a": 1}])
def test_an_unhashable_subject_format_is_a_400(victim, api, fmt):
    refused(receive(signed(claims_for({"format": fmt}))), "invalid_request")
    still_alive(api, victim)


def test_a_sub_id_of_null_does_not_fall_back_to_the_events_subject(victim, api):
    """`"sub_id": null` is a malformed primary subject, not an absent one."""
    claims = claims_for(None, events={SESSION_REVOKED: {"subject": iss_sub(victim)}})
    claims["sub_id"] = None
    refused(receive(signed(claims)), "invalid_request")
    still_alive(api, victim)


def test_a_refused_set_changes_nothing_even_after_a_good_first_event(victim, api):
    claims = claims_for(None, events={
        SESSION_REVOKED: {"subject": iss_sub(victim)},
        CREDENTIAL_CHANGE: {"subject": {"format": "no-such-format"}}})
    refused(receive(signed(claims)), "invalid_request")
    still_alive(api, victim)


# ------------------------------------------------------------------ subjects naming the wrong user
@pytest.mark.parametrize("email", ["%@example.test", "victim@%", "_ictim@example.test",
                                   "%", "victim@example.test%", "VICTIM@EXAMPLE.TEST "])
def test_like_wildcards_in_an_email_subject_name_nobody(victim, api, email):
    assert receive(signed(claims_for({"format": "email", "email": email}))).status_code in (
        202, 400)
    still_alive(api, victim)


def test_an_email_with_a_nul_names_nobody(victim, api, make_user):
    blank = make_user()  # the only user without an email
    blank_session = api.login_ok(blank.username)
    for email in ["victim@example.test\x00evil", "\x00"]:
        resp = receive(signed(claims_for({"format": "email", "email": email})))
        assert resp.status_code in (202, 400), resp.status_code
    still_alive(api, victim)
    assert api.whoami(blank_session["access"]).status_code == 200


def test_an_email_two_users_share_names_nobody(victim, api, make_user):
    make_user(email="VICTIM@example.test")
    assert receive(signed(claims_for({"format": "email",
                                      "email": "victim@example.test"}))).status_code == 202
    still_alive(api, victim)


def test_an_iss_sub_under_another_configured_transmitter_names_nobody(settings, victim, api):
    """PEER may name users under its own issuer or ours, never under OTHER's: OTHER's
    user 5 is not PEER's to end."""
    two_transmitters(settings)
    assert receive(signed(claims_for(iss_sub(victim, OTHER)))).status_code == 202
    still_alive(api, victim)


@pytest.mark.parametrize("spelling", [
    lambda pk: f"0{pk}", lambda pk: f" {pk}", lambda pk: f"+{pk}", lambda pk: f"{pk}\n",
    lambda pk: f"{str(pk)[0]}_{str(pk)[1:]}", lambda pk: "".join(
        chr(0x0660 + int(d)) for d in str(pk))],  # Arabic-Indic digits
    ids=["leading-zero", "leading-space", "plus", "trailing-newline", "underscore",
         "arabic-indic-digits"])
def test_only_the_exact_pk_string_names_a_user(make_user, api, spelling):
    users = [make_user() for _ in range(12)]
    target = users[-1]
    assert target.pk >= 10  # two digits at least, for the "1_2" spelling
    sub = spelling(target.pk)
    assert sub != str(target.pk)
    session = api.login_ok(target.username)
    for subject in [{"format": "iss_sub", "iss": PEER, "sub": sub},
                    {"format": "opaque", "id": sub}]:
        assert receive(signed(claims_for(subject))).status_code in (202, 400)
    assert api.whoami(session["access"]).status_code == 200


def test_a_session_named_under_the_wrong_user_stays(victim, api, make_user):
    """A complex subject pairs user X (by email) with victim's session: neither ends."""
    other = make_user(email="other@example.test")
    api.login_ok(other.username)
    subject = {"format": "complex", "user": {"format": "email", "email": "other@example.test"},
               "session": {"format": "opaque", "id": victim.sessions_[0]["session_id"]}}
    assert receive(signed(claims_for(subject))).status_code == 202
    still_alive(api, victim)
    assert live(other) == 1


def test_a_session_id_spelt_otherwise_is_still_only_that_session(victim, api):
    """uuid.UUID accepts other spellings of an id; they still name the same one session
    (never a prefix match, never another session)."""
    sid = victim.sessions_[0]["session_id"]
    for spelling in [sid[:-1], sid + "0", sid[:8], "%", "*"]:
        subject = {"format": "complex", "session": {"format": "opaque", "id": spelling}}
        assert receive(signed(claims_for(subject))).status_code == 202
    still_alive(api, victim)


# ------------------------------------------------------------------ the transmitter's JWKS
def test_a_jwks_redirect_is_not_followed(settings, local_server, victim, api):
    internal = local_server(peer_jwks())
    redirector = local_server({}, status=302, location=internal.url)
    transmitter_at(settings, redirector.url)
    resp = receive(signed(claims_for(iss_sub(victim))))
    assert internal.hits == 0
    assert resp.status_code in (400, 503)
    still_alive(api, victim)


@pytest.mark.parametrize("keys", [["not-a-jwk"], [{**PEER_KEY.as_dict(private=False),
                                                   "kid": ["peer-1"]}], [None]])
def test_a_malformed_jwks_from_the_url_is_never_a_500(settings, local_server, victim, api,
                                                      keys):
    server = local_server({"keys": keys})
    transmitter_at(settings, server.url)
    resp = receive(signed(claims_for(iss_sub(victim))))
    assert resp.status_code in (400, 503), resp.status_code
    resp.json()
    still_alive(api, victim)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"keys": "x"}', b"{" * 50000])
def test_a_jwks_url_answering_garbage_refuses_without_a_500(settings, local_server, victim,
                                                            api, body):
    server = local_server(body)
    transmitter_at(settings, server.url)
    resp = receive(signed(claims_for(iss_sub(victim))))
    assert resp.status_code in (400, 503), resp.status_code
    resp.json()
    still_alive(api, victim)


def test_a_failing_jwks_is_not_refetched_for_every_forged_set(settings, local_server):
    server = local_server({}, status=500)
    transmitter_at(settings, server.url)
    forged = unsigned({"alg": "ES256", "typ": "secevent+jwt", "kid": "peer-1"},
                      json.dumps(claims_for()).encode())
    for _ in range(5):
        assert receive(forged).status_code == 503
    assert server.hits <= 1


def test_a_stale_jwks_whose_url_fails_is_not_refetched_for_every_set(settings, local_server,
                                                                     monkeypatch, victim):
    server = local_server(peer_jwks())
    transmitter_at(settings, server.url, JWKS_CACHE_TTL=0.5)
    assert receive(signed(claims_for(events={NOOP: {}}))).status_code == 202
    time.sleep(0.6)
    server.status = 500
    for _ in range(5):
        assert receive(signed(claims_for(events={NOOP: {}}))).status_code == 202
    assert server.hits <= 2


def test_forged_kids_refetch_a_healthy_jwks_at_most_once_per_interval(settings, local_server,
                                                                      victim, api):
    server = local_server(peer_jwks())
    transmitter_at(settings, server.url)
    for n in range(6):
        mine = ECKey.generate_key("P-256", parameters={"kid": f"forged-{n}"})
        refused(receive(signed(claims_for(iss_sub(victim)), key=mine)), "invalid_key")
    assert server.hits <= 2
    still_alive(api, victim)


def genuine(key=PEER_KEY) -> str:
    """A SET that names nobody: acted on (202) whenever the key verifies."""
    return signed(claims_for(events={NOOP: {}}), key=key)


def test_a_failing_jwks_is_tried_again_after_a_doubling_bounded_backoff(settings, local_server,
                                                                        clock):
    server = local_server({}, status=500)
    transmitter_at(settings, server.url)
    forged = unsigned({"alg": "ES256", "typ": "secevent+jwt", "kid": "peer-1"},
                      json.dumps(claims_for()).encode())
    assert receive(forged).status_code == 503
    for hits, wait in enumerate([5, 10, 20, 40, 60, 60], start=1):
        clock.tick(wait - 0.5)
        assert receive(forged).status_code == 503
        assert server.hits == hits
        clock.tick(1)
        assert receive(forged).status_code == 503
        assert server.hits == hits + 1
    server.status, server.body = 200, peer_jwks()
    clock.tick(60)
    assert receive(genuine()).status_code == 202


def test_an_unknown_kid_while_the_jwks_url_fails_is_try_again_later(settings, local_server,
                                                                   clock):
    """A genuine SET signed with a rotated key the URL cannot give us now is a 503 (the
    transmitter retries it), not a final 400; known keys still verify meanwhile."""
    rotated = ECKey.generate_key("P-256", parameters={"kid": "peer-2"})
    server = local_server(peer_jwks())
    transmitter_at(settings, server.url)
    assert receive(genuine()).status_code == 202
    server.status = 500
    clock.tick(6)
    assert receive(genuine(rotated)).status_code == 503
    assert receive(genuine(rotated)).status_code == 503
    assert receive(genuine()).status_code == 202
    assert server.hits == 2
    server.status, server.body = 200, {"keys": [*peer_jwks()["keys"],
                                                rotated.as_dict(private=False)]}
    clock.tick(6)
    assert receive(genuine(rotated)).status_code == 202
    assert server.hits == 3


def test_a_refetch_that_is_redirected_keeps_the_keys_and_reaches_nothing(settings,
                                                                         local_server, clock):
    internal = local_server(peer_jwks())
    server = local_server(peer_jwks())
    transmitter_at(settings, server.url, JWKS_CACHE_TTL=60)
    assert receive(genuine()).status_code == 202
    server.status, server.location = 302, internal.url
    clock.tick(61)
    assert receive(genuine()).status_code == 202
    assert (server.hits, internal.hits) == (2, 0)


@pytest.mark.parametrize("body", [b"[" * 200_000, b'{"keys": ' + b"[" * 200_000])
def test_a_deeply_nested_jwks_is_a_failed_fetch_not_a_500(settings, local_server, body):
    transmitter_at(settings, local_server(body).url)
    resp = receive(genuine())
    assert resp.status_code == 503, resp.status_code
    resp.json()


def test_concurrent_sets_share_one_fetch_of_a_failing_jwks(settings, monkeypatch):
    """A burst of SETs while the URL hangs: one fetch, whose failure answers them all."""
    transmitter_at(settings, "https://peer.example.test/jwks.json")
    calls = []

    def slow_failure(url: str):
        calls.append(url)
        time.sleep(0.3)
        raise jwks_cache.JwksUnavailable("timed out")

    monkeypatch.setattr(jwks_cache, "_fetch", slow_failure)
    transmitter = {"issuer": PEER, "jwks": "https://peer.example.test/jwks.json"}
    outcomes = []

    def one_set() -> None:
        try:
            jwks_cache.key_for(transmitter, "peer-1")
        except jwks_cache.JwksUnavailable:
            outcomes.append("unavailable")

    threads = [threading.Thread(target=one_set) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes == ["unavailable"] * 6 and len(calls) == 1


def hanging_fetches(monkeypatch, hangs_for: float):
    """JWKS fetches that hang until released (or `hangs_for` seconds, then fail):
    (started, release, waited_in_vain), the last a list of each fetch's timing out."""
    started, release, waited_in_vain = threading.Event(), threading.Event(), []

    def hanging(url: str):
        started.set()
        waited_in_vain.append(not release.wait(hangs_for))
        raise jwks_cache.JwksUnavailable("timed out")

    monkeypatch.setattr(jwks_cache, "_fetch", hanging)
    return started, release, waited_in_vain


def test_stale_keys_serve_at_once_while_another_request_fetches(settings, local_server,
                                                                monkeypatch):
    """A refetch that hangs holds only the request that makes it: the others use the
    keys they have (a kid they name), without waiting for it."""
    server = local_server(peer_jwks())
    transmitter_at(settings, server.url, JWKS_CACHE_TTL=0)
    transmitter = {"issuer": PEER, "jwks": server.url}
    jwks_cache.key_for(transmitter, "peer-1")
    started, release, waited_in_vain = hanging_fetches(monkeypatch, hangs_for=5)
    fetcher = threading.Thread(target=jwks_cache.key_for, args=(transmitter, "peer-1"))
    fetcher.start()
    assert started.wait(5)
    assert jwks_cache.key_for(transmitter, "peer-1") is not None
    release.set()
    fetcher.join(10)
    assert waited_in_vain == [False]


def test_a_hanging_first_fetch_holds_the_others_no_longer_than_a_fetch_may_take(
        settings, monkeypatch):
    """Nothing cached and the one fetch hangs (a transmitter that drips its answer):
    the other SETs wait at most PUSH_TIMEOUT for it, then are told to try again."""
    transmitter_at(settings, "https://peer.example.test/jwks.json", PUSH_TIMEOUT=0.2)
    transmitter = {"issuer": PEER, "jwks": "https://peer.example.test/jwks.json"}
    started, release, waited_in_vain = hanging_fetches(monkeypatch, hangs_for=10)
    fetcher = threading.Thread(target=lambda: pytest.raises(
        jwks_cache.JwksUnavailable, jwks_cache.key_for, transmitter, "peer-1"))
    fetcher.start()
    assert started.wait(5)
    with pytest.raises(jwks_cache.JwksUnavailable):
        jwks_cache.key_for(transmitter, "peer-1")
    release.set()
    fetcher.join(10)
    assert waited_in_vain == [False]


# ------------------------------------------------------------------ streams of someone else
@pytest.fixture
def intruder(api, make_user):
    """Another receiver's service account, also allowed to manage streams."""
    account = make_user()
    account.user_permissions.add(Permission.objects.get(codename="manage_ssf_stream"))
    return api.login_ok(account.username)["access"]


def test_another_accounts_stream_cannot_be_changed_paused_verified_or_deleted(
        create_stream, intruder, push_receiver):
    stream = create_stream(aud="https://rp.example.test/")
    sid, auth = stream["stream_id"], bearer(intruder)
    client = Client()
    hijack = {"stream_id": sid, "delivery": {"method": PUSH, "endpoint_url": push_receiver.url}}
    assert send_json(client.patch, url("ssf_stream"), hijack, **auth).status_code == 404
    assert send_json(client.put, url("ssf_stream"), hijack, **auth).status_code == 404
    assert client.delete(f"{url('ssf_stream')}?stream_id={sid}", **auth).status_code == 404
    assert send_json(client.post, url("ssf_status"), {"stream_id": sid, "status": "disabled"},
                     **auth).status_code == 404
    assert client.get(url("ssf_status"), {"stream_id": sid}, **auth).status_code == 404
    assert send_json(client.post, url("ssf_verification"), {"stream_id": sid},
                     **auth).status_code == 404
    assert send_json(client.post, url("ssf_poll", sid), {"returnImmediately": True},
                     **auth).status_code == 404
    row = SsfStream.objects.get(pk=sid)
    assert (row.delivery_method, row.status, row.endpoint_url) == (POLL, "enabled", "")
    assert not SsfOutboxEvent.objects.exists()
    listed = client.get(url("ssf_stream"), **auth)
    assert listed.status_code == 200 and listed.json() == []


def test_acknowledging_another_streams_sets_through_ones_own_does_nothing(
        create_stream, intruder, api, user):
    victim_stream = create_stream()
    own = send_json(Client().post, url("ssf_stream"), {"delivery": {"method": POLL}},
                    **bearer(intruder)).json()
    api.logout(api.login_ok(user.username)["access"])
    theirs = list(SsfOutboxEvent.objects.filter(stream_id=victim_stream["stream_id"])
                  .values_list("jti", flat=True))
    assert theirs
    resp = send_json(Client().post, url("ssf_poll", own["stream_id"]),
                     {"ack": theirs, "setErrs": {jti: {"err": "x"} for jti in theirs},
                      "returnImmediately": True}, **bearer(intruder))
    assert resp.status_code == 200 and set(resp.json()["sets"]).isdisjoint(theirs)
    assert SsfOutboxEvent.objects.filter(jti__in=theirs, delivered_at__isnull=True,
                                         failed_at__isnull=True).count() == len(theirs)


def test_a_stream_id_in_the_body_cannot_retarget_a_poll(create_stream, intruder, api, user):
    """The poll URL names the stream; a `stream_id` in the body changes nothing."""
    victim_stream = create_stream()
    own = send_json(Client().post, url("ssf_stream"), {"delivery": {"method": POLL}},
                    **bearer(intruder)).json()
    api.logout(api.login_ok(user.username)["access"])
    resp = send_json(Client().post, url("ssf_poll", own["stream_id"]),
                     {"stream_id": victim_stream["stream_id"], "returnImmediately": True},
                     **bearer(intruder))
    tokens = list(resp.json()["sets"].values())
    assert all(pyjwt.decode(t, options={"verify_signature": False})["aud"] == own["aud"]
               for t in tokens)


def test_the_receivers_secret_is_never_echoed(create_stream, manager_token, push_receiver):
    stream = create_stream({"method": PUSH, "endpoint_url": push_receiver.url,
                            "authorization_header": "Bearer top-secret-r3ceiver"})
    auth = bearer(manager_token)
    answers = [Client().get(url("ssf_stream"), {"stream_id": stream["stream_id"]}, **auth),
               Client().get(url("ssf_stream"), **auth),
               send_json(Client().patch, url("ssf_stream"),
                         {"stream_id": stream["stream_id"], "description": "x"}, **auth),
               Client().get(url("ssf_status"), {"stream_id": stream["stream_id"]}, **auth)]
    for resp in answers:
        assert resp.status_code == 200 and b"top-secret" not in resp.content


def test_a_header_injection_in_the_authorization_header_never_reaches_the_wire(
        create_stream, push_receiver, api, user, manager_token):
    """CR/LF in the receiver's authorization header: refused at creation, or at least
    never sent as an extra header."""
    resp = send_json(Client().post, url("ssf_stream"), {"delivery": {
        "method": PUSH, "endpoint_url": push_receiver.url,
        "authorization_header": "Bearer x\r\nX-Injected: 1"}}, **bearer(manager_token))
    assert resp.status_code in (201, 400)
    if resp.status_code == 201:
        from jwt_sessions.shared_signals.pusher import deliver

        SsfStream.objects.exclude(pk=resp.json()["stream_id"]).delete()
        jti = SsfOutboxEvent.objects.create(
            stream_id=resp.json()["stream_id"], jti=secrets.token_hex(8), token="a.b.c").jti
        deliver(jti)
        assert all("X-Injected" not in r["headers"] for r in push_receiver.received)


def test_an_aud_cannot_be_changed_to_another_receivers(create_stream, manager_token):
    stream = create_stream(aud="https://rp.example.test/")
    for verb in (Client().patch, Client().put):
        resp = send_json(verb, url("ssf_stream"), {"stream_id": stream["stream_id"],
                                                   "aud": PEER_AUDIENCE},
                         **bearer(manager_token))
        assert resp.status_code == 400
    assert SsfStream.objects.get(pk=stream["stream_id"]).audience == "https://rp.example.test/"


def test_deeply_nested_stream_bodies_are_400(manager_token):
    body = '{"delivery": ' + "[" * 30000 + "]" * 30000 + "}"
    resp = Client().post(url("ssf_stream"), data=body, content_type="application/json",
                         **bearer(manager_token))
    assert resp.status_code == 400 and resp["Content-Type"].startswith("application/json")


def test_a_huge_max_events_is_capped(create_stream, manager_token):
    stream = create_stream()
    resp = send_json(Client().post, url("ssf_poll", stream["stream_id"]),
                     {"maxEvents": 10**30, "returnImmediately": True}, **bearer(manager_token))
    assert resp.status_code in (200, 400)
    resp.json()


# ------------------------------------------------------------------ introspection
def test_a_refresh_token_is_no_caller_credential(api, tokens, make_user):
    account = make_user()
    grant_introspection(account)
    gateway_pair = api.login_ok(account.username)
    resp = introspect(api, tokens["access"], gateway_pair["refresh"])
    assert resp.status_code == 401 and "active" not in resp.json()


def test_the_token_itself_is_no_caller_credential(api, tokens):
    """A holder who sends its own token as Bearer learns nothing of RFC 7662."""
    resp = introspect(api, tokens["access"], tokens["access"])
    assert resp.status_code == 403 and "active" not in resp.json()


def test_a_forged_caller_token_with_the_gateways_identity_is_refused(api, tokens, gateway):
    claims = pyjwt.decode(gateway, options={"verify_signature": False})
    header = pyjwt.get_unverified_header(gateway)
    forged = pyjwt.encode(claims, "not-the-signing-key-but-long-enough-1234567890",
                          algorithm="HS256", headers=header)
    resp = introspect(api, tokens["access"], forged)
    assert resp.status_code == 401 and "active" not in resp.json()


def test_an_answer_about_someone_elses_token_names_nothing_secret(api, tokens, gateway, user):
    answer = introspect(api, tokens["access"], gateway).json()
    refresh_answer = introspect(api, tokens["refresh"], gateway).json()
    for body in (answer, refresh_answer):
        text = json.dumps(body)
        assert body["active"] is True
        for secret in (tokens["refresh"], tokens["access"], user.password, user.username,
                       user.email or "@"):
            assert secret not in text


def test_inactive_answers_do_not_tell_forged_from_revoked_from_unknown(api, tokens, gateway,
                                                                      user):
    """No oracle: a revoked, a forged and a made-up token all get the same bytes."""
    from jwt_sessions.crypto import new_session_secret
    from jwt_sessions.tokens import make_refresh_token, parse_refresh_token

    forged = make_refresh_token(parse_refresh_token(tokens["refresh"]).session_id,
                                new_session_secret()).value
    other_pair = api.login_ok(user.username)
    api.logout(other_pair["access"])
    answers = {introspect(api, token, gateway).content
               for token in (forged, other_pair["access"], other_pair["refresh"],
                             "x" * 107, "a.b.c")}
    assert answers == {b'{"active":false}'}
    assert introspect(api, tokens["access"], gateway).json()["active"] is True


def test_an_unauthenticated_caller_costs_no_lookup_of_the_token(api, tokens, queries):
    with queries() as captured:
        resp = post_form(api, "introspect", {"token": tokens["refresh"]})
    assert resp.status_code == 401
    assert not any("jwt_sessions_session" in q["sql"] for q in captured.captured_queries)


# ------------------------------------------------------------------ revocation
def test_a_forged_access_token_naming_a_victims_session_revokes_nothing(api, tokens):
    claims = pyjwt.decode(tokens["access"], options={"verify_signature": False})
    header = pyjwt.get_unverified_header(tokens["access"])
    forged = pyjwt.encode(claims, "not-the-signing-key-but-long-enough-1234567890",
                          algorithm="HS256", headers=header)
    resp = post_form(api, "revoke", {"token": forged})
    assert resp.status_code == 200 and resp.content == b""
    assert api.whoami(tokens["access"]).status_code == 200


def test_an_alg_none_access_token_revokes_nothing(api, tokens):
    claims = pyjwt.decode(tokens["access"], options={"verify_signature": False})
    forged = f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims)}."
    assert post_form(api, "revoke", {"token": forged}).status_code == 200
    assert api.whoami(tokens["access"]).status_code == 200


def test_revoking_with_another_users_token_as_bearer_changes_nothing(api, tokens, make_user):
    """Revocation takes no caller credential: a Bearer of someone else's is ignored, and
    only the `token` field counts."""
    other = make_user()
    other_pair = api.login_ok(other.username)
    resp = post_form(api, "revoke", {"token": "garbage"}, **bearer(tokens["access"]))
    assert resp.status_code == 200
    assert api.whoami(tokens["access"]).status_code == 200
    assert api.whoami(other_pair["access"]).status_code == 200


def test_a_revocation_answer_is_the_same_bytes_for_known_and_unknown(api, tokens):
    known = post_form(api, "revoke", {"token": tokens["refresh"]})
    unknown = post_form(api, "revoke", {"token": tokens["refresh"]})
    garbage = post_form(api, "revoke", {"token": "x"})
    shape = {(r.status_code, r.content, r.get("Content-Type")) for r in (known, unknown, garbage)}
    assert len(shape) == 1


# ------------------------------------------------------------------ Global Token Revocation
def gtr(body, access: str, raw: str | None = None):
    return Client(raise_request_exception=False).post(
        url("global_token_revocation"), data=raw or json.dumps(body),
        content_type="application/json", **bearer(access))


@pytest.mark.parametrize("email", ["%@example.test", "victim@%", "%", "_ictim@example.test"])
def test_global_revocation_by_a_wildcard_email_ends_nobody(victim, api, manager_token, email):
    assert gtr({"sub_id": {"format": "email", "email": email}}, manager_token).status_code == 404
    still_alive(api, victim)


def test_global_revocation_under_a_foreign_issuer_ends_nobody(victim, api, manager_token):
    resp = gtr({"sub_id": iss_sub(victim, "https://evil.example.test/")}, manager_token)
    assert resp.status_code == 404
    still_alive(api, victim)


def test_global_revocation_of_a_session_of_another_user_ends_nobody(victim, api, make_user,
                                                                   manager_token):
    other = make_user(email="someone-else@example.test")
    subject = {"format": "complex",
               "user": {"format": "email", "email": "someone-else@example.test"},
               "session": {"format": "opaque", "id": victim.sessions_[0]["session_id"]}}
    assert gtr({"sub_id": subject}, manager_token).status_code == 404
    still_alive(api, victim)
    assert other.pk


def test_global_revocation_names_a_user_by_the_exact_pk_string_only(victim, api,
                                                                   manager_token):
    for sub in (f"0{victim.pk}", f"+{victim.pk}"):
        assert gtr({"sub_id": {"format": "opaque", "id": sub}}, manager_token).status_code == 404
    still_alive(api, victim)


def test_global_revocation_with_an_unhashable_format_is_a_400(victim, api, manager_token):
    resp = gtr({"sub_id": {"format": ["opaque"], "id": str(victim.pk)}}, manager_token)
    assert resp.status_code == 400, resp.status_code
    still_alive(api, victim)


def test_global_revocation_by_an_email_with_a_nul_ends_nobody(victim, api, manager_token):
    resp = gtr({"sub_id": {"format": "email", "email": "victim@example.test\x00x"}},
               manager_token)
    assert resp.status_code in (400, 404), resp.status_code
    still_alive(api, victim)


def test_global_revocation_of_deeply_nested_json_is_a_400(victim, api, manager_token):
    raw = '{"sub_id": ' + "[" * 30000 + "]" * 30000 + "}"
    resp = gtr(None, manager_token, raw=raw)
    assert resp.status_code == 400
    still_alive(api, victim)


def test_global_revocation_needs_more_than_an_introspection_grant(victim, api, make_user):
    gateway_account = make_user()
    grant_introspection(gateway_account)
    access = api.login_ok(gateway_account.username)["access"]
    resp = gtr({"sub_id": {"format": "opaque", "id": str(victim.pk)}}, access)
    assert resp.status_code == 403
    still_alive(api, victim)


def test_an_ssf_stream_account_cannot_introspect(api, tokens, manager_token):
    resp = introspect(api, tokens["access"], manager_token)
    assert resp.status_code == 403


def test_our_own_issuer_in_a_peers_subject_is_documented_to_name_our_users(victim):
    """Documented: a transmitter may name users under its issuer or ours. Kept as a test
    so a change of that rule is a decision, not an accident."""
    assert receive(signed(claims_for(iss_sub(victim, ISSUER)))).status_code == 202
    assert live(victim) == 0


# ------------------------------------------------------------------ later additions
def test_basic_credentials_on_introspection_are_no_unthrottled_password_oracle(
        api, tokens, make_user, settings, clock):
    import base64

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "jwt_sessions.authentication.JWTSessionAuthentication",
            "rest_framework.authentication.BasicAuthentication"],
        "DEFAULT_THROTTLE_RATES": {"jwt_sessions_login": "5/min",
                                   "jwt_sessions_login_user": "3/min"}}
    target = make_user()
    statuses = []
    for n in range(12):
        guess = base64.b64encode(f"{target.username}:guess-{n}".encode()).decode()
        resp = post_form(api, "introspect", {"token": tokens["access"]},
                         HTTP_AUTHORIZATION=f"Basic {guess}", REMOTE_ADDR="203.0.113.9")
        statuses.append(resp.status_code)
    assert 429 in statuses, statuses


def test_a_stream_cannot_take_the_audience_of_another_accounts_stream(
        create_stream, intruder, api, user):
    create_stream(aud="https://rp.example.test/")
    resp = send_json(Client().post, url("ssf_stream"),
                     {"delivery": {"method": POLL}, "aud": "https://rp.example.test/"},
                     **bearer(intruder))
    assert resp.status_code == 400, resp.status_code


@pytest.mark.parametrize("header", ["Bearer x\r\nX-Injected: 1", "Bearer x\nY", "Bearer x\rY"])
def test_an_unsendable_authorization_header_is_refused_at_creation(manager_token,
                                                                   push_receiver, header):
    resp = send_json(Client().post, url("ssf_stream"), {"delivery": {
        "method": PUSH, "endpoint_url": push_receiver.url, "authorization_header": header}},
        **bearer(manager_token))
    assert resp.status_code == 400, resp.status_code


@pytest.mark.parametrize("header", ["Bearer x\x0bY", "Bearer x\x7f", "Bearer caf\u00e9",
                                    "Bearer x\u2028Y", "Bearer x\x85Y"])
def test_an_authorization_header_is_visible_ascii_or_refused(manager_token, push_receiver,
                                                             header):
    resp = send_json(Client().post, url("ssf_stream"), {"delivery": {
        "method": PUSH, "endpoint_url": push_receiver.url, "authorization_header": header}},
        **bearer(manager_token))
    assert resp.status_code == 400, resp.status_code
    assert "authorization_header" in resp.json()["delivery"]
    assert not SsfStream.objects.exists()


@pytest.mark.parametrize("verb", ["patch", "put"])
def test_an_unsendable_authorization_header_is_refused_on_update(create_stream, manager_token,
                                                                 push_receiver, verb):
    stream = create_stream({"method": PUSH, "endpoint_url": push_receiver.url,
                            "authorization_header": "Bearer good\ttoken-._~+/="})
    resp = send_json(getattr(Client(), verb), url("ssf_stream"), {
        "stream_id": stream["stream_id"], "delivery": {
            "method": PUSH, "endpoint_url": push_receiver.url,
            "authorization_header": "Bearer x\r\nX-Injected: 1"}}, **bearer(manager_token))
    assert resp.status_code == 400, resp.status_code
    saved = SsfStream.objects.get(pk=stream["stream_id"])
    assert saved.authorization_header == "Bearer good\ttoken-._~+/="


def test_a_stream_cannot_take_another_accounts_default_audience(create_stream, intruder):
    theirs = create_stream()
    resp = send_json(Client().post, url("ssf_stream"),
                     {"delivery": {"method": POLL}, "aud": theirs["aud"]}, **bearer(intruder))
    assert resp.status_code == 400 and "aud" in resp.json(), resp.status_code
    assert SsfStream.objects.filter(audience=theirs["aud"]).count() == 1


def test_an_account_may_open_a_second_stream_for_its_own_audience(create_stream):
    first = create_stream(aud="https://rp.example.test/")
    second = create_stream(aud="https://rp.example.test/")
    assert first["stream_id"] != second["stream_id"]
    assert first["aud"] == second["aud"] == "https://rp.example.test/"


def test_a_stream_cannot_take_an_audience_this_deployment_answers_to(settings, api,
                                                                     stream_manager):
    """Our transmitters' audiences (SETs for us) and our access tokens' audience: a
    receiver holding SETs for them could replay them here or to our token verifiers."""
    from jwt_sessions.shared_signals.serializers import own_audiences

    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "AUDIENCE": "https://api.example.test/"}
    auth = bearer(api.login_ok(stream_manager.username)["access"])
    for aud in (PEER_AUDIENCE, "https://api.example.test/"):
        resp = send_json(Client().post, url("ssf_stream"),
                         {"delivery": {"method": POLL}, "aud": aud}, **auth)
        assert resp.status_code == 400 and "aud" in resp.json(), (aud, resp.status_code)
    assert not SsfStream.objects.exists()
    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "AUDIENCE": ["https://a/", "https://b/"]}
    assert own_audiences() == {PEER_AUDIENCE, "https://a/", "https://b/"}


def basic_on_introspection(settings, login: str, login_user: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "jwt_sessions.authentication.JWTSessionAuthentication",
            "rest_framework.authentication.BasicAuthentication"],
        "DEFAULT_THROTTLE_RATES": {"jwt_sessions_login": login,
                                   "jwt_sessions_login_user": login_user}}


def introspect_as(api, token: str, username: str, password: str, ip: str = "203.0.113.9",
                  scheme: str = "Basic "):
    import base64

    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return post_form(api, "introspect", {"token": token},
                     HTTP_AUTHORIZATION=f"{scheme}{credentials}", REMOTE_ADDR=ip)


def test_a_gateway_with_right_basic_credentials_is_not_held_to_the_login_rates(
        api, tokens, make_user, settings, clock):
    from tests.conftest import PASSWORD

    basic_on_introspection(settings, "2/min", "1/min")
    account = make_user()
    grant_introspection(account)
    answers = [introspect_as(api, tokens["access"], account.username, PASSWORD)
               for _ in range(10)]
    assert [resp.status_code for resp in answers] == [200] * 10
    assert answers[-1].json()["active"] is True


def test_basic_guesses_from_one_address_are_throttled_per_username(
        api, tokens, make_user, settings, clock):
    """Three failed Basic checks of one account from one address use up 3/min: the
    right password is then throttled there, and tells nothing."""
    from tests.conftest import PASSWORD

    basic_on_introspection(settings, "100/min", "3/min")
    target = make_user()
    grant_introspection(target)
    assert [introspect_as(api, tokens["access"], name, "wrong").status_code
            for name in (target.username, f" {target.username.upper()}",
                         target.username)] == [401, 401, 401]
    assert introspect_as(api, tokens["access"], target.username, PASSWORD).status_code == 429
    assert introspect_as(api, tokens["access"], target.username, PASSWORD,
                         ip="203.0.113.77").status_code == 200  # another address's own


@pytest.mark.parametrize("scheme", ["basic\t", " BASIC  ", "Basic\t \t"])
def test_basic_credentials_spelt_otherwise_are_throttled_too(api, tokens, make_user, settings,
                                                            clock, scheme):
    """DRF reads the scheme case-insensitively and split at any whitespace: so do we."""
    basic_on_introspection(settings, "100/min", "2/min")
    target = make_user()
    statuses = [introspect_as(api, tokens["access"], target.username, f"guess-{n}",
                              scheme=scheme).status_code for n in range(4)]
    assert statuses == [401, 401, 429, 429]


def test_a_throttled_basic_attempt_checks_no_password(api, tokens, make_user, settings, clock):
    from django.contrib.auth.signals import user_login_failed

    basic_on_introspection(settings, "100/min", "2/min")
    target = make_user()
    failures = []

    def failed(sender, credentials, **kwargs) -> None:
        failures.append(credentials)

    user_login_failed.connect(failed)
    try:
        statuses = [introspect_as(api, tokens["access"], target.username, f"guess-{n}")
                    .status_code for n in range(5)]
    finally:
        user_login_failed.disconnect(failed)
    assert statuses == [401, 401, 429, 429, 429]
    assert len(failures) == 2
    resp = introspect_as(api, tokens["access"], target.username, "guess-9")
    assert resp.status_code == 429 and resp["Retry-After"]


def test_basic_guesses_at_many_usernames_hit_the_address_limit(api, tokens, make_user,
                                                              settings, clock):
    basic_on_introspection(settings, "5/min", "100/min")
    statuses = [introspect_as(api, tokens["access"], make_user().username, "guess")
                .status_code for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    assert introspect_as(api, tokens["access"], "x", "y",
                         ip="203.0.113.10").status_code == 401  # another address


@pytest.mark.parametrize("header", ["Basic", "Basic !!!!", "Basic a b", "Basic bm9jb2xvbg==",
                                    "basic " + "A" * 5000, "Basic /w=="])
def test_a_malformed_basic_header_is_a_401_not_a_500(api, tokens, settings, clock, header):
    basic_on_introspection(settings, "100/min", "100/min")
    resp = post_form(api, "introspect", {"token": tokens["access"]},
                     HTTP_AUTHORIZATION=header)
    assert resp.status_code == 401, resp.status_code
    assert "active" not in resp.json()
