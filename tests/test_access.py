"""`jwt_sessions.access`: what `authenticate_access` and `aauthenticate_access` answer for
one access token, by what Redis and the database hold of its session. Both doors give
the same answer for every state."""
from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from jwt_sessions.access import aauthenticate_access, authenticate_access
from jwt_sessions.exceptions import SessionRevoked, TokenExpired, TokenInvalid
from jwt_sessions.models import Session
from jwt_sessions.redis import layout
from jwt_sessions.refresh import refresh_tokens
from jwt_sessions.services import issue_tokens, revoke_session

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["sync", "async"])
def authenticate(request):
    return authenticate_access if request.param == "sync" else async_to_sync(aauthenticate_access)


def test_a_live_token_names_its_user_and_session(authenticate, user):
    pair = issue_tokens(user)
    claims = authenticate(pair.access)
    assert (claims.user_id, claims.session_id) == (str(user.pk), pair.session_id)


def test_redis_cold_the_database_decides_and_warms_redis(authenticate, user, redis_conn):
    pair = issue_tokens(user)
    redis_conn.flushdb()
    claims = authenticate(pair.access)
    assert claims.session_id == pair.session_id
    assert redis_conn.exists(layout.access_key(pair.session_id, claims.jti))


def test_a_revoked_session_is_refused_from_its_tombstone(authenticate, user, redis_conn):
    pair = issue_tokens(user)
    revoke_session(pair.session_id)
    assert redis_conn.exists(layout.tombstone_key(pair.session_id))
    with pytest.raises(SessionRevoked):
        authenticate(pair.access)


def test_a_revocation_redis_lost_is_still_found_in_the_database(authenticate, user, redis_conn):
    pair = issue_tokens(user)
    revoke_session(pair.session_id)
    redis_conn.flushdb()
    with pytest.raises(SessionRevoked):
        authenticate(pair.access)


def test_a_session_deleted_behind_redis_is_refused(authenticate, user, redis_conn):
    pair = issue_tokens(user)
    redis_conn.flushdb()
    Session.objects.filter(pk=pair.session_id).delete()
    with pytest.raises(SessionRevoked):
        authenticate(pair.access)


def test_a_token_superseded_by_a_refresh_is_invalid_while_its_successor_lives(authenticate,
                                                                             user):
    pair = issue_tokens(user)
    successor = refresh_tokens(pair.refresh)
    with pytest.raises(TokenInvalid):
        authenticate(pair.access)
    assert authenticate(successor.access).session_id == pair.session_id


def test_an_expired_token_is_refused_even_while_its_session_lives(authenticate, user, clock):
    pair = issue_tokens(user)
    clock.tick(3600)
    with pytest.raises(TokenExpired):
        authenticate(pair.access)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
def test_garbage_is_an_invalid_token(authenticate, token):
    with pytest.raises(TokenInvalid):
        authenticate(token)
