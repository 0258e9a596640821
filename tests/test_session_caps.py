"""MAX_SESSIONS_PER_USER with its policy: "evict" makes room, "refuse" opens nothing; both
hold under concurrent logins, and the device list tells a client the cap and the policy."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from jwt_sessions import api as jwt_api
from jwt_sessions.exceptions import MaxSessionsReached
from jwt_sessions.models import Session
from tests.conftest import all_at_once, assert_error
from tests.test_checks import error_ids

pytestmark = pytest.mark.django_db
CONCURRENT_LOGINS = 16


def test_refuse_answers_403_and_opens_no_session(api, user, jwt_settings, redis_conn,
                                                signal_log):
    from jwt_sessions import signals

    jwt_settings(MAX_SESSIONS_PER_USER=2, MAX_SESSIONS_POLICY="refuse")
    kept = [api.login_ok(user.username) for _ in range(2)]
    keys_before = set(redis_conn.keys("*"))
    created = signal_log(signals.session_created)
    assert_error(api.login(user.username), 403, "max_sessions")
    assert Session.objects.filter(user=user).count() == 2
    new_keys = set(redis_conn.keys("*")) - keys_before
    assert all(key.startswith(b"jwts:t:") for key in new_keys), new_keys  # throttles only
    assert created == []
    for data in kept:
        assert api.whoami(data["access"]).status_code == 200


def test_refuse_lets_the_user_in_again_after_a_logout(api, user, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1, MAX_SESSIONS_POLICY="refuse")
    first = api.login_ok(user.username)
    assert_error(api.login(user.username), 403, "max_sessions")
    api.logout(first["access"])
    assert api.whoami(api.login_ok(user.username)["access"]).status_code == 200


def test_refuse_through_the_python_api(user, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1, MAX_SESSIONS_POLICY="refuse")
    jwt_api.issue_tokens(user)
    with pytest.raises(MaxSessionsReached):
        jwt_api.issue_tokens(user)
    assert Session.objects.filter(user=user).count() == 1


def test_evict_is_the_default_policy(api, user, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1)
    first = api.login_ok(user.username)
    api.login_ok(user.username)
    assert Session.objects.get(pk=first["session_id"]).revoked_reason == "max_sessions"


@pytest.mark.parametrize("policy", ["evict", "refuse"])
def test_device_list_shows_the_cap_and_policy_in_headers(api, tokens, jwt_settings, policy):
    jwt_settings(MAX_SESSIONS_PER_USER=5, MAX_SESSIONS_POLICY=policy)
    resp = api.sessions(tokens["access"])
    assert resp["Session-Limit"] == "5"
    assert resp["Session-Limit-Policy"] == policy
    assert isinstance(resp.json(), list)  # the body keeps its shape


def test_device_list_without_a_cap_has_no_cap_headers(api, tokens):
    resp = api.sessions(tokens["access"])
    assert "Session-Limit" not in resp
    assert "Session-Limit-Policy" not in resp


@pytest.mark.parametrize("policy", ["drop", "", None, "EVICT"])
def test_an_unknown_policy_fails_the_system_checks(settings, policy):
    assert error_ids(settings, {"MAX_SESSIONS_POLICY": policy}) == ["jwt_sessions.E029"]


# ------------------------------------------------------------------ concurrency
def _login_many(user_pk: int, count: int) -> list[str]:
    """`count` logins of one user at once, each in its own thread and connection; what
    each ended with: "ok" or the error code."""
    user = get_user_model().objects.get(pk=user_pk)

    def login() -> str:
        try:
            jwt_api.issue_tokens(user)
        except MaxSessionsReached as exc:
            return exc.get_codes()["code"]
        return "ok"

    return all_at_once(count, login)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("policy", ["evict", "refuse"])
def test_concurrent_logins_never_exceed_the_cap(user, jwt_settings, policy):
    cap = 3
    jwt_settings(MAX_SESSIONS_PER_USER=cap, MAX_SESSIONS_POLICY=policy)
    outcomes = _login_many(user.pk, CONCURRENT_LOGINS)
    assert len(outcomes) == CONCURRENT_LOGINS
    assert Session.objects.active().for_user(user).count() == cap
    if policy == "refuse":
        assert sorted(outcomes) == ["max_sessions"] * (CONCURRENT_LOGINS - cap) + ["ok"] * cap
        assert Session.objects.filter(user=user).count() == cap
    else:
        assert outcomes == ["ok"] * CONCURRENT_LOGINS
        assert Session.objects.filter(user=user, revoked_reason="max_sessions").count() == (
            CONCURRENT_LOGINS - cap)


def test_refuse_through_allauth_is_a_403_and_no_login(user, jwt_settings):
    """allauth's headless login under the cap: our 403 with its code, and allauth's own
    login undone (no session token for a login that opened no session)."""
    pytest.importorskip("allauth.headless")
    from tests.allauth_client import Headless

    jwt_settings(MAX_SESSIONS_PER_USER=1, MAX_SESSIONS_POLICY="refuse")
    assert Headless().login(user.username).status_code == 200
    app = Headless()
    resp = app.login(user.username)
    assert resp.status_code == 403
    assert resp.json()["errors"][0]["code"] == "max_sessions"
    assert app.access is None and app.session_token is None
    assert Session.objects.filter(user=user).count() == 1
