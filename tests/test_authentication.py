"""JWTSessionAuthentication: zero SQL on a Redis hit, the database on a miss."""
from datetime import timedelta

import pytest
from django.test import RequestFactory
from freezegun import freeze_time

from jwt_sessions.authentication import JWTSessionAuthentication
from jwt_sessions.models import Session
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_whoami_makes_zero_queries_over_20_requests(api, user, tokens, queries):
    with queries() as q:
        for _ in range(20):
            assert api.whoami(tokens["access"]).json() == {"id": user.pk}
    assert len(q.captured_queries) == 0


def test_after_redis_flush_authentication_uses_database_then_rehydrates(
        api, user, tokens, queries, redis_conn):
    redis_conn.flushdb()
    with queries() as q:
        assert api.whoami(tokens["access"]).json() == {"id": user.pk}
    assert len(q.captured_queries) >= 1
    with queries() as q:
        assert api.whoami(tokens["access"]).status_code == 200
    assert len(q.captured_queries) == 0


def test_after_redis_flush_refresh_works_and_next_request_is_zero_sql(
        api, user, tokens, queries, redis_conn):
    redis_conn.flushdb()
    new = api.refresh_ok(tokens["refresh"])
    with queries() as q:
        assert api.whoami(new["access"]).json() == {"id": user.pk}
    assert len(q.captured_queries) == 0


def test_view_reading_user_fields_loads_the_user(api, user, tokens, queries):
    with queries() as q:
        body = api.me(tokens["access"]).json()
    assert len(q.captured_queries) == 1
    assert body == {"id": user.pk, "username": user.username,
                    "session_id": tokens["session_id"]}


def test_only_latest_access_token_of_a_session_works(api, tokens):
    new = api.refresh_ok(tokens["refresh"])
    assert_error(api.whoami(tokens["access"]), 401, "token_invalid")
    assert api.whoami(new["access"]).status_code == 200


def test_superseded_access_token_is_refused_after_redis_flush_too(api, tokens, redis_conn):
    new = api.refresh_ok(tokens["refresh"])
    redis_conn.flushdb()
    assert_error(api.whoami(tokens["access"]), 401, "token_invalid")
    assert api.whoami(new["access"]).status_code == 200


def test_expired_access_token_is_token_expired(api, tokens):
    with freeze_time(timedelta(minutes=16), tick=True):
        assert_error(api.whoami(tokens["access"]), 401, "token_expired")


def test_access_token_of_deleted_session_is_session_revoked(api, tokens, redis_conn):
    Session.objects.all().delete()
    redis_conn.flushdb()
    assert_error(api.whoami(tokens["access"]), 401, "session_revoked")


def test_refused_token_on_users_own_view_carries_our_code(api, tokens):
    assert_error(api.whoami(tokens["access"] + "x"), 401, "token_invalid")


def test_no_credentials_on_users_view_is_drf_stock_401(api):
    resp = api.client.get("/api/whoami/")
    assert resp.status_code == 401
    assert resp.json()["detail"]
    assert resp["WWW-Authenticate"].startswith("Bearer")


def test_deactivated_user_row_is_refused_when_the_view_loads_it(api, user, tokens):
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # no signal: bypasses save
    assert_error(api.me(tokens["access"]), 401, "session_revoked")


def test_request_user_answers_pk_id_and_is_authenticated_lazily(api, user, tokens, queries):
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    with queries() as q:
        lazy_user, claims = JWTSessionAuthentication().authenticate(request)
        assert (lazy_user.pk, lazy_user.id, lazy_user.is_authenticated, bool(lazy_user),
                lazy_user.is_anonymous) == (user.pk, user.pk, True, True, False)
        assert str(claims.session_id) == tokens["session_id"]
    assert len(q.captured_queries) == 0
    assert lazy_user.username == user.username


@pytest.mark.parametrize("header", ["", "Basic dXNlcjpwYXNz", "Token abc"])
def test_other_schemes_are_left_to_other_classes(header):
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=header)
    assert JWTSessionAuthentication().authenticate(request) is None


def test_bearer_keyword_is_case_insensitive(api, tokens):
    assert api.client.get("/api/whoami/", HTTP_AUTHORIZATION=f"bearer {tokens['access']}"
                          ).status_code == 200


def test_database_fallback_updates_last_activity_at_resolution(api, tokens, redis_conn,
                                                               jwt_settings):
    jwt_settings(LAST_ACTIVITY_RESOLUTION=timedelta(seconds=30))
    before = Session.objects.get().last_activity_at
    with freeze_time(timedelta(minutes=1), tick=True):
        redis_conn.flushdb()
        assert api.whoami(tokens["access"]).status_code == 200
    assert Session.objects.get().last_activity_at > before
