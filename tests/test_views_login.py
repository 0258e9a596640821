"""POST login/: the token pair, Django's authenticate(), signals, and the Session row."""
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.signals import user_logged_in, user_login_failed
from freezegun import freeze_time

from jwt_sessions.models import Session
from tests.conftest import PASSWORD, UA_IPHONE, UA_MAC_CHROME, assert_error, url

pytestmark = pytest.mark.django_db

UA_GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
UA_IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")


class OpenSesameBackend(ModelBackend):
    """A custom backend: accepts any existing user whose password is 'open sesame'."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if password != "open sesame":
            return None
        return get_user_model().objects.filter(username=username).first()


def parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def test_login_returns_token_pair_with_tz_aware_expiries(api, user):
    resp = api.login(user.username)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"access", "refresh", "access_expires_at", "refresh_expires_at",
                         "session_id", "token_type"}
    assert body["token_type"] == "Bearer"
    assert parse_iso(body["access_expires_at"]) < parse_iso(body["refresh_expires_at"])
    session = Session.objects.get()
    assert body["session_id"] == str(session.pk)
    assert session.user == user
    assert parse_iso(body["refresh_expires_at"]) == session.expires_at
    assert api.whoami(body["access"]).json() == {"id": user.pk}


def test_each_login_opens_its_own_session(api, user):
    first, second = api.login_ok(user.username), api.login_ok(user.username)
    assert first["session_id"] != second["session_id"]
    assert first["refresh"] != second["refresh"]
    assert Session.objects.active().for_user(user).count() == 2


def test_login_goes_through_custom_authentication_backend(api, user, settings):
    settings.AUTHENTICATION_BACKENDS = ["tests.test_views_login.OpenSesameBackend"]
    assert_error(api.login(user.username), 401, "invalid_credentials")
    assert api.login(user.username, password="open sesame").status_code == 200


def test_failed_login_fires_user_login_failed(api, user, signal_log):
    failures = signal_log(user_login_failed)
    assert_error(api.login(user.username, password="wrong"), 401, "invalid_credentials")
    [call] = failures
    credentials, request = call["credentials"], call["request"]
    assert credentials["username"] == user.username
    assert credentials["password"] != "wrong"  # Django masks it
    assert request is not None and request.path == url("login")


def test_login_sends_user_logged_in_with_the_request(api, user, signal_log):
    logins = signal_log(user_logged_in)
    api.login_ok(user.username)
    assert [(c["request"].path, c["user"].pk) for c in logins] == [(url("login"), user.pk)]


def test_failed_login_sends_no_user_logged_in(api, user, signal_log):
    logins = signal_log(user_logged_in)
    api.login(user.username, password="wrong")
    assert logins == []


@pytest.mark.parametrize(("ua", "device_type", "browser", "os", "device"), [
    (UA_IPHONE, "mobile", "Mobile Safari", "iOS", "iPhone"),
    (UA_IPAD, "tablet", "Mobile Safari", "iOS", "iPad"),
    (UA_MAC_CHROME, "pc", "Chrome", "macOS", "Mac"),
    (UA_GOOGLEBOT, "bot", "Googlebot", "", "Spider"),
])
def test_login_records_device_parsed_from_user_agent(api, user, ua, device_type, browser, os,
                                                      device):
    api.login_ok(user.username, ua=ua)
    session = Session.objects.get()
    assert session.user_agent == ua
    assert session.device_type == device_type
    assert session.browser.startswith(browser)
    assert session.os == os
    assert session.device == device


def test_login_records_remote_addr(api, user):
    api.login_ok(user.username, ip="192.0.2.7")
    assert Session.objects.get().ip_address == "192.0.2.7"


def test_forwarded_for_is_ignored_without_num_proxies(api, user):
    api.login_ok(user.username, ip="192.0.2.7", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert Session.objects.get().ip_address == "192.0.2.7"


@pytest.mark.parametrize(("proxies", "expected"), [(1, "198.51.100.2"), (2, "198.51.100.1")])
def test_num_proxies_picks_that_many_hops_from_the_right(api, user, settings, proxies,
                                                         expected):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
    api.login_ok(user.username, ip="10.9.9.9",
                 HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1, 198.51.100.2")
    assert Session.objects.get().ip_address == expected


def test_login_field_follows_username_field(api, make_user, monkeypatch):
    """The body names the user model's USERNAME_FIELD, and authenticate() gets it."""
    model = get_user_model()
    person = make_user(email="ada@example.com")
    monkeypatch.setattr(model, "USERNAME_FIELD", "email")
    body = {"email": "ada@example.com", "password": PASSWORD}
    assert api.post(url("login"), body, REMOTE_ADDR="10.1.1.1").status_code == 200
    assert Session.objects.get().user == person
    resp = api.post(url("login"), {"username": person.username, "password": PASSWORD})
    assert resp.status_code == 400
    assert "email" in resp.json()


def test_inactive_user_gets_invalid_credentials(api, make_user):
    person = make_user(is_active=False)
    assert_error(api.login(person.username), 401, "invalid_credentials")
    assert not Session.objects.exists()


def test_wrong_password_gets_invalid_credentials_with_bearer_challenge(api, user):
    body = assert_error(api.login(user.username, password="nope"), 401, "invalid_credentials")
    assert PASSWORD not in str(body) and "nope" not in str(body)
    assert not Session.objects.exists()


def test_unknown_user_gets_the_same_answer_as_wrong_password(api, user):
    unknown = assert_error(api.login("nobody-here"), 401, "invalid_credentials")
    wrong = assert_error(api.login(user.username, password="nope"), 401, "invalid_credentials")
    assert unknown == wrong


def test_max_sessions_revokes_the_least_recently_active_session(api, user, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=2)
    with freeze_time(timedelta(minutes=-2), tick=True):
        oldest = api.login_ok(user.username)
    with freeze_time(timedelta(minutes=-1), tick=True):
        idle = api.login_ok(user.username)
    oldest = api.refresh_ok(oldest["refresh"])  # now the most recently active
    newest = api.login_ok(user.username)
    assert_error(api.whoami(idle["access"]), 401, "session_revoked")
    assert_error(api.refresh(idle["refresh"]), 401, "session_revoked")
    assert Session.objects.get(pk=idle["session_id"]).revoked_reason == "max_sessions"
    for data in (oldest, newest):
        assert api.whoami(data["access"]).status_code == 200
    assert Session.objects.active().for_user(user).count() == 2


def test_max_sessions_counts_only_the_users_own_active_sessions(api, user, make_user,
                                                                jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1)
    other = api.login_ok(make_user().username)
    first = api.login_ok(user.username)
    api.logout(first["access"])
    second = api.login_ok(user.username)
    assert api.whoami(other["access"]).status_code == 200
    assert api.whoami(second["access"]).status_code == 200
    assert Session.objects.get(pk=first["session_id"]).revoked_reason == "logout"


class NewerHasher(MD5PasswordHasher):
    """Stands for the hasher a Django upgrade makes preferred."""

    algorithm = "md5-newer"


def test_password_hash_upgrade_at_login_keeps_other_sessions(api, user, settings):
    phone = api.login_ok(user.username)
    settings.PASSWORD_HASHERS = ["tests.test_views_login.NewerHasher",
                                 "django.contrib.auth.hashers.MD5PasswordHasher"]
    api.login_ok(user.username)
    user.refresh_from_db()
    assert user.password.startswith("md5-newer$")
    assert api.whoami(phone["access"]).status_code == 200


def test_real_password_change_still_revokes_sessions(api, user):
    data = api.login_ok(user.username)
    user.set_password("a-new-password")
    user.save()
    assert_error(api.whoami(data["access"]), 401, "session_revoked")
