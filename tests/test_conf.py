"""The settings object: defaults, seconds as durations, and override_settings."""
from datetime import datetime, timedelta

import jwt
import pytest

from jwt_sessions.conf import DEFAULTS
from jwt_sessions.conf import jwt_settings as jwts
from tests.conftest import assert_error


def test_defaults_follow_the_spec(settings):
    settings.JWT_SESSIONS = {}
    assert jwts.ACCESS_TOKEN_LIFETIME == timedelta(minutes=15)
    assert jwts.REFRESH_TOKEN_LIFETIME == timedelta(days=30)
    assert jwts.SESSION_MAX_LIFETIME is None
    assert jwts.ROTATE_REFRESH_TOKENS is True
    assert jwts.REFRESH_REUSE_GRACE == timedelta(seconds=10)
    assert jwts.ALGORITHM == "HS256"
    assert jwts.CACHE_ALIAS == "default"
    assert jwts.REDIS_FAILURE_POLICY == "database"
    assert jwts.BCRYPT_ROUNDS == 12
    assert jwts.MAX_SESSIONS_PER_USER is None
    assert jwts.REVOKE_ON_PASSWORD_CHANGE is True
    assert jwts.REFRESH_COOKIE is None


def test_signing_key_defaults_to_secret_key_and_follows_it(settings):
    assert jwts.SIGNING_KEY == settings.SECRET_KEY
    settings.SECRET_KEY = "another-secret-" + "y" * 40
    assert jwts.SIGNING_KEY == settings.SECRET_KEY


@pytest.mark.parametrize(("value", "expected"), [
    (300, timedelta(minutes=5)), (0.5, timedelta(milliseconds=500)),
    (timedelta(hours=1), timedelta(hours=1)),
])
def test_durations_accept_seconds(jwt_settings, value, expected):
    jwt_settings(ACCESS_TOKEN_LIFETIME=value, LEEWAY=value)
    assert jwts.ACCESS_TOKEN_LIFETIME == expected
    assert jwts.LEEWAY == expected


def test_booleans_are_not_taken_for_seconds():
    from jwt_sessions.conf import as_timedelta

    assert as_timedelta(True) is True


def test_unknown_setting_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="NOT_A_SETTING"):
        jwts.NOT_A_SETTING  # noqa: B018


def test_every_default_is_readable(settings):
    settings.JWT_SESSIONS = {}
    for name in DEFAULTS:
        getattr(jwts, name)


def test_override_changes_value_without_reload(jwt_settings):
    assert jwts.BCRYPT_ROUNDS == 4
    jwt_settings(BCRYPT_ROUNDS=6)
    assert jwts.BCRYPT_ROUNDS == 6


@pytest.mark.django_db
def test_access_token_lifetime_override_changes_exp(api, user, jwt_settings):
    first = api.login_ok(user.username)
    jwt_settings(ACCESS_TOKEN_LIFETIME=60)
    second = api.login_ok(user.username)
    for data, minutes in ((first, 15), (second, 1)):
        claims = jwt.decode(data["access"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == minutes * 60
        expires = datetime.fromisoformat(data["access_expires_at"]).timestamp()
        assert expires == claims["exp"]


@pytest.mark.django_db
def test_signing_key_override_drops_cached_keys(api, user, jwt_settings):
    data = api.login_ok(user.username)
    jwt_settings(SIGNING_KEY="a-different-signing-key-" + "z" * 40)
    assert_error(api.whoami(data["access"]), 401, "token_invalid")
    assert api.whoami(api.login_ok(user.username)["access"]).status_code == 200


def test_settings_that_are_not_a_dict_fall_back_to_defaults(settings):
    settings.JWT_SESSIONS = None
    assert jwts.BCRYPT_ROUNDS == 12
