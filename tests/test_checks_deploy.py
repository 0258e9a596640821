"""`manage.py check --deploy` warns about settings that are fine in development only, each
with a hint saying the fix; `manage.py check` without --deploy stays quiet about them."""
from __future__ import annotations

import pytest
from django.core import checks

from jwt_sessions.checks import check_deployment
from tests.conftest import PASSWORD

GOOD_KEY = "k3y-of-its-own-" * 4  # 60 bytes, varied: not weak as Django judges keys
SAFE = {"SIGNING_KEY": GOOD_KEY, "BCRYPT_ROUNDS": 12}
TLS_REDIS = {"BACKEND": "django_redis.cache.RedisCache",
             "LOCATION": f"rediss://jwt:{PASSWORD}@redis.internal:6380/0"}


@pytest.fixture
def deploy(settings):
    """deploy(jwt_sessions, caches=None) -> the ids of check --deploy's jwt_sessions warnings."""
    settings.DEBUG = False
    settings.CACHES = {"default": TLS_REDIS}

    def run(values: dict, caches: dict | None = None, **django) -> list[str]:
        settings.JWT_SESSIONS = {**SAFE, **values}
        if caches is not None:
            settings.CACHES = caches
        for name, value in django.items():
            setattr(settings, name, value)
        messages = check_deployment()
        for message in messages:
            assert message.hint and message.hint.strip(), message  # every one says the fix
        return [message.id for message in messages]

    return run


def test_a_hardened_configuration_has_no_warning(deploy):
    assert deploy({}) == []
    assert deploy({"REFRESH_COOKIE": {}}) == []  # Secure by default with DEBUG off


def test_the_warnings_run_under_check_deploy_only(deploy, settings):
    deploy({"BCRYPT_ROUNDS": 4})
    deployed = checks.run_checks(tags=[checks.Tags.security], include_deployment_checks=True)
    assert "jwt_sessions.W006" in [m.id for m in deployed]
    assert "jwt_sessions.W006" not in [m.id for m in checks.run_checks()]


# ------------------------------------------------------------------ the cookie
def test_refresh_cookie_not_secure(deploy):
    assert deploy({"REFRESH_COOKIE": {"secure": False}}) == ["jwt_sessions.W002"]


def test_samesite_none_without_secure_is_an_error_deployed_or_not(deploy):
    deploy({"REFRESH_COOKIE": {"samesite": "None", "secure": False}})
    deployed = checks.run_checks(tags=[checks.Tags.security], include_deployment_checks=True)
    ids = [m.id for m in deployed if m.id.startswith("jwt_sessions.")]
    assert "jwt_sessions.E021" in ids and "jwt_sessions.W002" in ids
    assert "jwt_sessions.E021" in [m.id for m in checks.run_checks()]


# ------------------------------------------------------------------ Redis
def redis(location, **options) -> dict:
    return {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location,
                        "OPTIONS": options}}


@pytest.mark.parametrize("location,expected", [
    (f"redis://jwt:{PASSWORD}@10.0.0.5:6379/0", ["jwt_sessions.W003"]),
    ("rediss://10.0.0.5:6380/0", ["jwt_sessions.W004"]),
    ("redis://10.0.0.5:6379/0", ["jwt_sessions.W003", "jwt_sessions.W004"]),
    (f"rediss://:{PASSWORD}@10.0.0.5,redis://:{PASSWORD}@10.0.0.6", ["jwt_sessions.W003"]),
    ([f"rediss://:{PASSWORD}@a.internal", "rediss://b.internal"], ["jwt_sessions.W004"]),
    (f"redis://:{PASSWORD}@127.0.0.1:6379/0", []),  # loopback: no wire to protect
    (f"redis://:{PASSWORD}@localhost:6379/0", []),
    (f"redis://:{PASSWORD}@[::1]:6379/0", []),
    ("unix:///run/redis.sock?db=0", ["jwt_sessions.W004"]),
])
def test_redis_without_tls_or_password(deploy, location, expected):
    assert deploy({}, redis(location)) == expected


@pytest.mark.parametrize("options", [{"PASSWORD": PASSWORD},
                                     {"CONNECTION_POOL_KWARGS": {"password": PASSWORD}},
                                     {"password": PASSWORD}])
def test_a_password_in_options_counts(deploy, options):
    assert deploy({}, redis("rediss://redis.internal:6380/0", **options)) == []


def test_redis_warnings_follow_cache_alias(deploy):
    caches = {"default": TLS_REDIS, "sessions": redis("redis://10.0.0.7")["default"]}
    assert deploy({"CACHE_ALIAS": "sessions"}, caches) == ["jwt_sessions.W003",
                                                          "jwt_sessions.W004"]
    assert deploy({}, caches) == []


def test_redis_warnings_are_off_while_debugging(deploy):
    assert deploy({}, redis("redis://10.0.0.5"), DEBUG=True) == []


def test_no_password_in_any_message(deploy, settings):
    deploy({}, redis(f"redis://jwt:{PASSWORD}@10.0.0.5:6379/0"))
    for message in check_deployment():
        assert PASSWORD not in message.msg and PASSWORD not in message.hint


# ------------------------------------------------------------------ the signing key
def test_hmac_signed_with_secret_key(deploy, settings):
    assert deploy({"SIGNING_KEY": None}) == ["jwt_sessions.W005"]
    assert deploy({"SIGNING_KEY": settings.SECRET_KEY}) == ["jwt_sessions.W005"]
    old = "old-secret-key-" + "y" * 50
    assert deploy({"SIGNING_KEY": old}, SECRET_KEY_FALLBACKS=[old]) == ["jwt_sessions.W005"]


def test_an_asymmetric_algorithm_never_signs_with_secret_key(deploy, settings):
    """No fallback to SECRET_KEY (an error without SIGNING_KEY) and SECRET_KEY itself is
    refused as a key: the start-up errors already cover it, so no warning is added."""
    from jwt_sessions.checks import check_settings

    values = {"ALGORITHM": "RS256", "SIGNING_KEY": settings.SECRET_KEY,
              "VERIFYING_KEY": settings.SECRET_KEY}
    assert deploy(values) == []
    assert {m.id for m in check_settings()} == {"jwt_sessions.E018"}
    assert deploy({"ALGORITHM": "RS256", "SIGNING_KEY": None}) == []
    assert [m.id for m in check_settings()] == ["jwt_sessions.E006"]


@pytest.mark.parametrize("key", [
    "ab" * 32,  # 64 bytes, two distinct characters
    b"\x00\x01\x02\x03" * 16,  # as bytes: four distinct
    "django-insecure-" + "r4nd0m-l00k1ng" * 3,  # Django's development prefix
])
def test_a_guessable_hmac_key_is_warned_of(deploy, key):
    assert deploy({"SIGNING_KEY": key}) == ["jwt_sessions.W005"]


def test_a_guessable_additional_verifying_key_is_warned_of(deploy):
    """It verifies tokens as the signing key does: guess it, and forge tokens."""
    assert deploy({"ADDITIONAL_VERIFYING_KEYS": {"2024": "z" * 64}}) == ["jwt_sessions.W005"]
    assert deploy({"ADDITIONAL_VERIFYING_KEYS": {"2024": GOOD_KEY.upper()}}) == []


def test_a_varied_key_given_as_bytes_is_not_warned_of(deploy):
    assert deploy({"SIGNING_KEY": GOOD_KEY.encode()}) == []


@pytest.mark.parametrize("location", ["redis://[::1:6379/0", "redis://redis.internal:63x9/0",
                                      ["rediss://a.internal", "redis://[bad"]])
def test_an_unparsable_location_is_no_deploy_crash(deploy, location):
    """The start-up checks report it (E031); the deploy ones say nothing more of it."""
    assert deploy({}, redis(location)) == []


def test_an_unhashable_signing_key_is_no_deploy_crash(deploy):
    assert deploy({"SIGNING_KEY": ["a", "list"]}) == []  # E005 at start-up


# ------------------------------------------------------------------ bcrypt
@pytest.mark.parametrize("rounds,expected", [(4, ["jwt_sessions.W006"]),
                                             (9, ["jwt_sessions.W006"]), (10, []), (12, [])])
def test_bcrypt_rounds_below_ten(deploy, rounds, expected):
    assert deploy({"BCRYPT_ROUNDS": rounds}) == expected
