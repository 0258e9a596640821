"""The receiver: SETs from configured transmitters (signed here by joserfc) end what
they name, once; anything else is refused with an RFC 8935 error body."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from joserfc.jwk import ECKey, OctKey

from jwt_sessions.models import Session
from jwt_sessions.shared_signals import jwks as jwks_cache
from tests.conftest import url
from tests.ssf_helpers import (
    ACCOUNT_DISABLED,
    ACCOUNT_PURGED,
    CREDENTIAL_CHANGE,
    PEER,
    PEER_AUDIENCE,
    SESSION_REVOKED,
    peer_jwks,
    peer_set,
    shared_signals,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ssf_on")]


def receive(token: str):
    return Client().post(url("ssf_receive"), data=token,
                         content_type="application/secevent+jwt")


def _live(user) -> int:
    return Session.objects.active().filter(user=user).count()


def _iss_sub(user) -> dict:
    return {"format": "iss_sub", "iss": PEER, "sub": str(user.pk)}


@pytest.fixture
def two_sessions(api, user):
    return [api.login_ok(user.username) for _ in range(2)]


def test_session_revoked_ends_the_named_session(two_sessions, user, api):
    first = two_sessions[0]
    subject = {"format": "complex", "user": _iss_sub(user),
               "session": {"format": "opaque", "id": first["session_id"]}}
    resp = receive(peer_set({SESSION_REVOKED: {"event_timestamp": 1}}, subject))
    assert resp.status_code == 202
    assert api.whoami(first["access"]).status_code == 401
    assert api.whoami(two_sessions[1]["access"]).status_code == 200


def test_session_revoked_for_a_user_ends_every_session(two_sessions, user):
    assert receive(peer_set({SESSION_REVOKED: {}}, _iss_sub(user))).status_code == 202
    assert _live(user) == 0
    assert set(Session.objects.values_list("revoked_reason", flat=True)) == {"shared_signal"}


@pytest.mark.parametrize("event", [CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_PURGED])
def test_account_events_end_every_session(two_sessions, user, event):
    assert receive(peer_set({event: {}}, _iss_sub(user))).status_code == 202
    assert _live(user) == 0


def test_a_session_of_another_user_is_not_ended(two_sessions, user, make_user, api):
    other = make_user()
    subject = {"format": "complex", "user": _iss_sub(other),
               "session": {"format": "opaque", "id": two_sessions[0]["session_id"]}}
    assert receive(peer_set({SESSION_REVOKED: {}}, subject)).status_code == 202
    assert _live(user) == 2


@pytest.mark.parametrize("subject", [
    lambda user: {"format": "email", "email": user.email.upper()},
    lambda user: {"format": "opaque", "id": str(user.pk)},
    lambda user: {"format": "complex", "user": {"format": "opaque", "id": str(user.pk)}},
])
def test_users_are_named_by_email_opaque_and_complex(make_user, api, subject):
    user = make_user(email="someone@example.test")
    api.login_ok(user.username)
    assert receive(peer_set({CREDENTIAL_CHANGE: {}}, subject(user))).status_code == 202
    assert _live(user) == 0


def test_the_old_caep_subject_in_the_event_counts(two_sessions, user):
    assert receive(peer_set({SESSION_REVOKED: {"subject": _iss_sub(user)}})).status_code == 202
    assert _live(user) == 0


def test_unknown_subjects_and_events_are_acknowledged_and_change_nothing(two_sessions, user):
    for token in [peer_set({SESSION_REVOKED: {}}, {"format": "opaque", "id": "999999"}),
                  peer_set({SESSION_REVOKED: {}}, {"format": "iss_sub", "iss": "https://x/",
                                                   "sub": str(user.pk)}),
                  peer_set({"https://example.test/other-event": {}}, _iss_sub(user))]:
        assert receive(token).status_code == 202
    assert _live(user) == 2


def test_a_replayed_jti_is_acted_on_once(two_sessions, user, api):
    token = peer_set({SESSION_REVOKED: {}}, _iss_sub(user), jti="once")
    assert receive(token).status_code == 202
    fresh = api.login_ok(user.username)
    assert receive(token).status_code == 202  # acknowledged, not applied again
    assert api.whoami(fresh["access"]).status_code == 200


def _refused(resp, err: str) -> None:
    assert resp.status_code == 400, resp.content
    body = resp.json()
    assert body["err"] == err and isinstance(body["description"], str), body


def test_refusals_carry_rfc8935_error_codes(user):
    other_key = ECKey.generate_key("P-256", parameters={"kid": "peer-1"})
    _refused(receive("not a jwt"), "invalid_request")
    _refused(receive(peer_set({SESSION_REVOKED: {}}, _iss_sub(user), typ="JWT")),
             "invalid_request")
    _refused(receive(peer_set({SESSION_REVOKED: {}}, _iss_sub(user), iss="https://evil/")),
             "invalid_issuer")
    _refused(receive(peer_set({SESSION_REVOKED: {}}, _iss_sub(user), key=other_key)),
             "invalid_key")
    _refused(receive(peer_set({SESSION_REVOKED: {}}, _iss_sub(user), aud="https://else/")),
             "invalid_audience")
    _refused(receive(peer_set({}, _iss_sub(user))), "invalid_request")
    _refused(receive(peer_set({SESSION_REVOKED: {}}, _iss_sub(user), iat=1)),
             "invalid_request")
    _refused(receive(peer_set({SESSION_REVOKED: {}}, {"format": "phone_number"})),
             "invalid_request")


def test_an_hmac_set_is_refused_even_with_the_public_key_as_secret(user):
    """Algorithm confusion: a SET "signed" with HS256 keyed by the transmitter's public
    key is not a signature of the transmitter."""
    from joserfc import jwt as jose_jwt

    secret = OctKey.import_key(json.dumps(peer_jwks()).encode())
    token = jose_jwt.encode({"alg": "HS256", "typ": "secevent+jwt", "kid": "peer-1"},
                            {"iss": PEER, "aud": PEER_AUDIENCE, "jti": "x", "iat": 2**31 - 1,
                             "events": {SESSION_REVOKED: {}}, "sub_id": _iss_sub(user)}, secret)
    _refused(receive(token), "invalid_key")


def test_a_non_ascii_body_is_a_400():
    resp = Client().post(url("ssf_receive"), data="é".encode(), content_type="text/plain")
    _refused(resp, "invalid_request")


class _JwksServer:
    def __init__(self, jwks: dict) -> None:
        self.jwks, self.hits = jwks, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"


def test_a_jwks_url_is_cached_and_refetched_for_a_new_kid(settings, two_sessions, user,
                                                          monkeypatch):
    server = _JwksServer(peer_jwks())
    try:
        settings.JWT_SESSIONS["SHARED_SIGNALS"] = shared_signals(TRANSMITTERS=[
            {"issuer": PEER, "jwks": server.url, "audience": PEER_AUDIENCE}])
        monkeypatch.setattr(jwks_cache, "_REFETCH_INTERVAL", 0.0)
        for _ in range(3):
            assert receive(peer_set({"https://example.test/noop": {}})).status_code == 202
        assert server.hits == 1
        rotated = ECKey.generate_key("P-256", parameters={"kid": "peer-2"})
        server.jwks = {"keys": [*peer_jwks()["keys"], rotated.as_dict(private=False)]}
        assert receive(peer_set({SESSION_REVOKED: {}}, _iss_sub(user),
                                key=rotated)).status_code == 202
        assert server.hits == 2 and _live(user) == 0
    finally:
        server.server.shutdown()
        server.server.server_close()
        jwks_cache.forget()


def test_receiving_is_off_while_shared_signals_is(settings, user):
    settings.JWT_SESSIONS = {"BCRYPT_ROUNDS": 4}
    assert receive(peer_set({SESSION_REVOKED: {}}, _iss_sub(user))).status_code == 404


def test_a_session_named_alone_is_ended_and_a_strange_id_names_nothing(two_sessions, user, api):
    first, second = two_sessions
    alone = {"format": "complex", "session": {"format": "opaque", "id": first["session_id"]}}
    assert receive(peer_set({SESSION_REVOKED: {}}, alone)).status_code == 202
    assert api.whoami(first["access"]).status_code == 401
    strange = {"format": "complex", "session": {"format": "opaque", "id": "not-a-uuid"}}
    assert receive(peer_set({SESSION_REVOKED: {}}, strange)).status_code == 202
    assert api.whoami(second["access"]).status_code == 200
    empty = {"format": "complex"}
    _refused(receive(peer_set({SESSION_REVOKED: {}}, empty)), "invalid_request")
