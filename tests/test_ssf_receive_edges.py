"""The edges of the receiver's fixes: the iat's leeway and range, a jti or subject string
with a control character, a body Django will not read, a SET refused late in its
events, and the one spelling of a pk, for pushed SETs and Global Token Revocation
alike."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from freezegun import freeze_time

from jwt_sessions.models import Session
from jwt_sessions.shared_signals import outbox, subjects
from jwt_sessions.shared_signals import settings as ssf
from jwt_sessions.shared_signals.models import SsfReceivedEvent
from jwt_sessions.shared_signals.receiver import IAT_LEEWAY
from tests import test_ssf_attacks
from tests.conftest import url
from tests.ssf_helpers import CREDENTIAL_CHANGE, PEER, SESSION_REVOKED
from tests.test_ssf_attacks import (
    claims_for,
    gtr,
    iss_sub,
    live,
    receive,
    refused,
    signed,
    still_alive,
)

victim = test_ssf_attacks.victim  # a user with two live sessions, the attacks' fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ssf_on")]


# ------------------------------------------------------------------ iat
def test_an_iat_just_inside_the_leeway_is_heard(victim):
    token = signed(claims_for(iss_sub(victim), iat=int(time.time()) + IAT_LEEWAY - 5))
    assert receive(token).status_code == 202
    assert live(victim) == 0


@pytest.mark.parametrize("ahead", [IAT_LEEWAY + 30, 10**400])
def test_an_iat_beyond_the_leeway_is_refused(victim, api, ahead):
    token = signed(claims_for(iss_sub(victim), iat=int(time.time()) + ahead))
    refused(receive(token), "invalid_request")
    still_alive(api, victim)


def test_a_set_from_a_clock_ahead_is_not_heard_again_once_its_jti_is_forgotten(victim):
    """A jti is kept RETENTION from its receipt, up to IAT_LEEWAY before the SET's iat;
    by the time the prune forgets it, the SET is too old to be heard again."""
    received_at = datetime.now(timezone.utc)
    token = signed(claims_for(iss_sub(victim), iat=int(received_at.timestamp()) + IAT_LEEWAY))
    assert receive(token).status_code == 202
    with freeze_time(received_at + ssf.setting("RETENTION") + timedelta(seconds=1)):
        outbox.prune()
        assert not SsfReceivedEvent.objects.exists()
        refused(receive(token), "invalid_request")


@pytest.mark.parametrize("claim", ["iat", "exp", "nbf"])
def test_an_infinite_time_claim_is_a_400(victim, api, claim):
    """JSON's 1e400 parses as an infinite float, which no integer conversion takes."""
    claims = {**claims_for(iss_sub(victim)), claim: "INFINITY"}
    payload = json.dumps(claims).replace('"INFINITY"', "1e400").encode()
    refused(receive(signed(payload)), "invalid_request")
    still_alive(api, victim)


@pytest.mark.parametrize("jti", ["a\x00b", "\ud800", "a\nforged log line"])
def test_a_jti_with_a_control_character_is_a_400(victim, api, jti):
    """PostgreSQL cannot store a NUL, no database a lone surrogate; a newline would
    forge a line of the log."""
    refused(receive(signed(claims_for(iss_sub(victim), jti=jti))), "invalid_request")
    still_alive(api, victim)


# ------------------------------------------------------------------ a body Django will not read
def test_a_genuine_set_over_djangos_upload_limit_is_a_json_refusal(settings, victim, api):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    token = signed(claims_for(iss_sub(victim), padding="x" * 2048))
    refused(receive(token), "invalid_request")
    still_alive(api, victim)


def test_an_oversized_body_through_asgi_is_a_json_refusal(victim, api):
    """The ASGI door buffers the body in a file first; Django's limit still holds and
    the answer is still the receiver's JSON."""
    async def post():
        return await AsyncClient().post(url("ssf_receive"), data=b"a" * (3 * 1024 * 1024),
                                        content_type="application/secevent+jwt")

    refused(async_to_sync(post)(), "invalid_request")
    still_alive(api, victim)


# ------------------------------------------------------------------ all events, or none
def test_a_set_refused_for_its_last_event_keeps_its_jti_for_the_corrected_one(victim, api):
    """The refusal rolls back the jti too: the transmitter's corrected SET, same jti,
    is acted on, not taken for a replay."""
    bad = claims_for(None, jti="fixed-later", events={
        SESSION_REVOKED: {"subject": iss_sub(victim)},
        CREDENTIAL_CHANGE: {"subject": {"format": ["iss_sub"]}}})
    refused(receive(signed(bad)), "invalid_request")
    still_alive(api, victim)
    good = {**bad, "events": {SESSION_REVOKED: {"subject": iss_sub(victim)},
                              CREDENTIAL_CHANGE: {"subject": iss_sub(victim)}}}
    assert receive(signed(good)).status_code == 202
    assert live(victim) == 0


def test_a_set_refused_by_a_complex_subject_of_a_later_event_ends_nothing(victim, api):
    claims = claims_for(None, events={
        SESSION_REVOKED: {"subject": iss_sub(victim)},
        CREDENTIAL_CHANGE: {"subject": {"format": "complex", "session": "x"}}})
    refused(receive(signed(claims)), "invalid_request")
    still_alive(api, victim)


# ------------------------------------------------------------------ subject strings
UNPRINTABLE = {"nul": "\x00", "us": "\x1f", "del": "\x7f", "nel": "\x85", "surrogate": "\ud800"}
unprintable = pytest.mark.parametrize("char", UNPRINTABLE.values(), ids=UNPRINTABLE.keys())


@unprintable
@pytest.mark.parametrize("subject", [
    lambda user, c: {"format": "email", "email": f"victim@example.test{c}"},
    lambda user, c: {"format": "opaque", "id": f"{user.pk}{c}"},
    lambda user, c: {"format": "iss_sub", "iss": PEER, "sub": f"{c}{user.pk}"},
    lambda user, c: {"format": "iss_sub", "iss": f"{PEER}{c}", "sub": str(user.pk)},
    lambda user, c: {"format": "complex", "user": iss_sub(user), "session": {
        "format": "opaque", "id": f"{user.sessions_[0]['session_id']}{c}"}},
], ids=["email", "opaque", "sub", "iss", "session"])
def test_a_subject_string_with_a_control_character_is_a_400(victim, api, subject, char):
    refused(receive(signed(claims_for(subject(victim, char)))), "invalid_request")
    still_alive(api, victim)


@pytest.mark.parametrize("sid", [5, ["x"], "", None])
def test_a_session_id_that_is_no_string_is_a_400(victim, api, sid):
    """Refused, not taken for an id that names no session of ours (202)."""
    subject = {"format": "complex", "user": iss_sub(victim),
               "session": {"format": "opaque", "id": sid}}
    refused(receive(signed(claims_for(subject))), "invalid_request")
    still_alive(api, victim)


@unprintable
def test_global_revocation_by_an_id_with_a_control_character_is_a_400(victim, api,
                                                                      manager_token, char):
    resp = gtr({"sub_id": {"format": "opaque", "id": f"{victim.pk}{char}"}}, manager_token)
    assert resp.status_code == 400, resp.status_code
    still_alive(api, victim)


def test_printable_unicode_in_an_email_is_still_a_subject(victim, api):
    """Only control characters are refused: an internationalised address names nobody
    here, but is a valid subject (202)."""
    resp = receive(signed(claims_for({"format": "email", "email": "vïctim@exämple.test"})))
    assert resp.status_code == 202
    still_alive(api, victim)


# ------------------------------------------------------------------ formats
@pytest.mark.parametrize("fmt", [["opaque"], {"a": 1}, 7, None, True])
def test_a_complex_users_format_that_is_no_string_is_a_400(victim, api, fmt):
    subject = {"format": "complex", "user": {"format": fmt, "id": str(victim.pk)}}
    refused(receive(signed(claims_for(subject))), "invalid_request")
    still_alive(api, victim)


# ------------------------------------------------------------------ the one spelling of a pk
def test_the_exact_pk_string_still_names_the_user(victim):
    assert receive(signed(claims_for({"format": "opaque", "id": str(victim.pk)}))
                   ).status_code == 202
    assert live(victim) == 0


def test_a_uuid_pk_is_named_by_its_canonical_string_only(monkeypatch, victim):
    """With a UUID primary key (here: the Session model standing in for a user model),
    str(uuid) names the row; the other spellings uuid.UUID accepts name nobody."""
    monkeypatch.setattr(subjects, "get_user_model", lambda: Session)
    pk = Session.objects.filter(user=victim).first().pk
    assert subjects._pk(str(pk)) == pk
    for spelling in [str(pk).upper(), pk.hex, f"{{{pk}}}", f"urn:uuid:{pk}"]:
        assert subjects._pk(spelling) is None, spelling
