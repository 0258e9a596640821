"""A Redis writer who puts garbage in a session's value gets a refusal or the database's
answer, never a 500: what Redis says only ever narrows what the row allows."""
from __future__ import annotations

import pytest
from django.test import Client

from jwt_sessions.models import Session
from jwt_sessions.redis import layout
from jwt_sessions.tokens import decode_access_token, parse_refresh_token
from tests.conftest import next_ip, url

pytestmark = pytest.mark.django_db

GARBAGE = [b"", b"no-separator", b"jti|user", b"jti|1|not-a-number", b"jti|1|1.5",
           b"\xff\xfe|1|-", b"|||", b"jti|1|" + b"9" * 5000]


@pytest.mark.parametrize("value", GARBAGE, ids=repr)
def test_a_garbled_session_value_falls_back_to_the_database(api, user, tokens, redis_conn,
                                                            value):
    token = parse_refresh_token(tokens["refresh"])
    key = layout.session_key(token.session_id, token.sha256)
    assert redis_conn.exists(key)
    redis_conn.set(key, value, keepttl=True)

    client = Client(raise_request_exception=False)
    resp = client.post(url("refresh"), {"refresh": tokens["refresh"]},
                       content_type="application/json", REMOTE_ADDR=next_ip())
    assert resp.status_code == 200, (resp.status_code, resp.content[:200])
    body = resp.json()
    assert decode_access_token(body["access"]).user_id == str(user.pk)
    session = Session.objects.get(pk=tokens["session_id"])
    assert parse_refresh_token(body["refresh"]).sha256 == session.refresh_token_sha256
    assert api.whoami(body["access"]).status_code == 200
    assert api.refresh(body["refresh"]).status_code == 200  # and the chain goes on
