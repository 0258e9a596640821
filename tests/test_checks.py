"""System checks: bad JWT_SESSIONS settings fail at start-up with a clear message."""
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django_redis.cache import RedisCache

from jwt_sessions.checks import check_settings


def error_ids(settings, value) -> list[str]:
    settings.JWT_SESSIONS = value
    return [error.id for error in check_settings()]


@pytest.fixture(scope="module")
def ed25519_pem() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_test_settings_pass_the_checks(settings):
    assert check_settings() == []


def test_empty_settings_pass_the_checks(settings):
    assert error_ids(settings, {}) == []


def test_bad_settings_stop_manage_py_check(settings):
    settings.JWT_SESSIONS = {"ALGORITHM": "HS999"}
    with pytest.raises(SystemCheckError, match="jwt_sessions.E004"):
        call_command("check")


def test_settings_not_a_dict_is_an_error(settings):
    assert error_ids(settings, ["ALGORITHM"]) == ["jwt_sessions.E001"]


def test_unknown_key_is_an_error_naming_it(settings):
    settings.JWT_SESSIONS = {"ACCESS_TOKEN_LIFE": timedelta(minutes=5)}
    [error] = check_settings()
    assert error.id == "jwt_sessions.E015" and "ACCESS_TOKEN_LIFE" in error.msg
    assert "ACCESS_TOKEN_LIFETIME" in error.hint


@pytest.mark.parametrize("key", ["ACCESS_TOKEN_LIFETIME", "REFRESH_TOKEN_LIFETIME", "LEEWAY",
                                 "AUDIT_RETENTION", "LAST_ACTIVITY_RESOLUTION",
                                 "SESSION_MAX_LIFETIME", "REFRESH_REUSE_GRACE"])
@pytest.mark.parametrize("value", ["15 minutes", timedelta(seconds=-1), -5, [1]])
def test_bad_duration_is_an_error(settings, key, value):
    assert "jwt_sessions.E002" in error_ids(settings, {key: value})


@pytest.mark.parametrize("key", ["ACCESS_TOKEN_LIFETIME", "REFRESH_TOKEN_LIFETIME"])
def test_zero_lifetime_is_an_error(settings, key):
    ids = error_ids(settings, {key: 0})
    assert "jwt_sessions.E016" in ids and "jwt_sessions.E002" not in ids


def test_int_and_float_seconds_are_accepted_for_durations(settings):
    assert error_ids(settings, {"ACCESS_TOKEN_LIFETIME": 300, "REFRESH_TOKEN_LIFETIME": 86400.5,
                                "REFRESH_REUSE_GRACE": 0, "LEEWAY": 5,
                                "SESSION_MAX_LIFETIME": 7 * 86400}) == []


def test_grace_longer_than_access_lifetime_is_an_error(settings):
    value = {"ACCESS_TOKEN_LIFETIME": 60, "REFRESH_REUSE_GRACE": timedelta(minutes=2)}
    assert error_ids(settings, value) == ["jwt_sessions.E003"]
    settings.JWT_SESSIONS = value
    [error] = check_settings()
    assert "REFRESH_REUSE_GRACE" in error.hint and "ACCESS_TOKEN_LIFETIME" in error.hint


@pytest.mark.parametrize("algorithm", ["HS999", "none", "", None, 256, ["HS256"]])
def test_unusable_algorithm_is_an_error(settings, algorithm):
    assert error_ids(settings, {"ALGORITHM": algorithm}) == ["jwt_sessions.E004"]


@pytest.mark.parametrize(("algorithm", "length"), [("HS256", 31), ("HS384", 47),
                                                   ("HS512", 63)])
def test_hmac_key_shorter_than_its_hash_is_an_error(settings, algorithm, length):
    value = {"ALGORITHM": algorithm, "SIGNING_KEY": "k" * length}
    assert error_ids(settings, value) == ["jwt_sessions.E005"]
    value["SIGNING_KEY"] = "k" * (length + 1)
    assert error_ids(settings, value) == []


def test_short_secret_key_is_an_error_when_it_signs(settings):
    settings.SECRET_KEY = "too-short"
    assert error_ids(settings, {}) == ["jwt_sessions.E005"]


def test_asymmetric_algorithm_without_keys_is_an_error(settings):
    assert error_ids(settings, {"ALGORITHM": "EdDSA"}) == ["jwt_sessions.E006"]


def test_asymmetric_algorithm_with_wrong_key_is_an_error(settings, ed25519_pem):
    private, public = ed25519_pem
    assert error_ids(settings, {"ALGORITHM": "EdDSA", "SIGNING_KEY": private,
                                "VERIFYING_KEY": public}) == []
    assert error_ids(settings, {"ALGORITHM": "EdDSA", "SIGNING_KEY": private,
                                "VERIFYING_KEY": "not a pem"}) == ["jwt_sessions.E018"]
    assert error_ids(settings, {"ALGORITHM": "RS256", "SIGNING_KEY": private,
                                "VERIFYING_KEY": public}) == ["jwt_sessions.E018"] * 2


def test_bad_additional_verifying_key_is_an_error(settings, ed25519_pem):
    private, public = ed25519_pem
    value = {"ALGORITHM": "EdDSA", "SIGNING_KEY": private, "VERIFYING_KEY": public,
             "ADDITIONAL_VERIFYING_KEYS": {"old": "garbage"}}
    assert error_ids(settings, value) == ["jwt_sessions.E018"]


@pytest.mark.parametrize("policy", ["allow", "", None, "DATABASE"])
def test_bad_failure_policy_is_an_error(settings, policy):
    assert error_ids(settings, {"REDIS_FAILURE_POLICY": policy}) == ["jwt_sessions.E007"]


@pytest.mark.parametrize("limit", [0, -1, True, "5", 2.5])
def test_bad_max_sessions_is_an_error(settings, limit):
    assert error_ids(settings, {"MAX_SESSIONS_PER_USER": limit}) == ["jwt_sessions.E008"]


@pytest.mark.parametrize("rounds", [3, 32, "12", None])
def test_bad_bcrypt_rounds_is_an_error(settings, rounds):
    assert error_ids(settings, {"BCRYPT_ROUNDS": rounds}) == ["jwt_sessions.E009"]


def test_unknown_cache_alias_is_an_error(settings):
    assert error_ids(settings, {"CACHE_ALIAS": "sessions"}) == ["jwt_sessions.E010"]


def test_additional_verifying_keys_must_be_a_dict(settings):
    assert "jwt_sessions.E011" in error_ids(settings, {"ADDITIONAL_VERIFYING_KEYS": ["k"]})


@pytest.mark.parametrize("cookie,check", [("yes", "E012"), ({"nmae": "x"}, "E019"),
                                          ({"samesite": "lax"}, "E020"),
                                          ({"samesite": "None", "secure": False}, "E021")])
def test_bad_refresh_cookie_is_an_error(settings, cookie, check):
    assert error_ids(settings, {"REFRESH_COOKIE": cookie}) == [f"jwt_sessions.{check}"]


def test_host_prefixed_cookie_needs_root_path_no_domain_and_secure(settings):
    good = {"name": "__Host-refresh", "path": "/", "secure": True}
    assert error_ids(settings, {"REFRESH_COOKIE": good}) == []
    for bad in ({"path": "/auth/"}, {"domain": "example.com"}, {"secure": False}):
        value = {"REFRESH_COOKIE": {**good, **bad}}
        assert error_ids(settings, value) == ["jwt_sessions.E013"]


def test_every_check_id_means_one_problem():
    """Each id is emitted by one place (checks.py, user_admin.py for the user admin,
    dpop/checks.py for DPOP), and docs/checks.md lists them all."""
    import ast
    import re
    from collections import Counter
    from pathlib import Path

    import jwt_sessions.checks
    import jwt_sessions.dpop.checks
    import jwt_sessions.shared_signals.checks
    import jwt_sessions.user_admin

    sources = "\n".join(Path(module.__file__).read_text()
                         for module in (jwt_sessions.checks, jwt_sessions.user_admin,
                                        jwt_sessions.dpop.checks,
                                        jwt_sessions.shared_signals.checks))
    ids = []
    for node in ast.walk(ast.parse(sources)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name in ("_error", "_warning"):
            number = node.args[-1]
            assert isinstance(number, ast.Constant), ast.unparse(node)  # a literal, greppable
            ids.append(f"jwt_sessions.{name[1].upper()}{number.value:03d}")
        ids += [keyword.value.value for keyword in node.keywords
                if keyword.arg == "id" and isinstance(keyword.value, ast.Constant)]
    repeated = [check for check, count in Counter(ids).items() if count > 1]
    assert len(ids) >= 28 and repeated == [], repeated
    table = (Path(__file__).parent.parent / "docs" / "checks.md").read_text()
    assert sorted(set(re.findall(r"`(jwt_sessions\.[EW]\d{3})`", table))) == sorted(ids)
@pytest.mark.parametrize("value", [
    {"max_age": timedelta(seconds=30), "max_entries": 10_000},
    {"max_age": 5},
    {},
])
def test_good_local_cache_settings_pass(settings, value):
    assert error_ids(settings, {"LOCAL_CACHE": value}) == []


@pytest.mark.parametrize(("value", "check"), [
    ("on", "E023"), ([], "E023"),  # not a dict
    ({"size": 10}, "E024"),  # an unknown option
    ({"max_age": 0}, "E025"), ({"max_age": -1}, "E025"), ({"max_age": "30s"}, "E025"),
    ({"max_age": timedelta(hours=1)}, "E026"),  # longer than the access lifetime
    ({"max_entries": 0}, "E027"), ({"max_entries": 1.5}, "E027"),
    ({"max_entries": True}, "E027"),
])
def test_each_bad_local_cache_setting_has_its_own_id(settings, value, check):
    assert error_ids(settings, {"LOCAL_CACHE": value}) == [f"jwt_sessions.{check}"]


@pytest.mark.parametrize(("value", "checks"), [
    (0, {"E016"}), (timedelta(0), {"E016"}),  # zero: "must be positive"
    (-1, {"E002", "E016"}),  # negative: neither a duration >= 0 nor positive
    ("1s", {"E002"}),  # not a duration
])
def test_bad_heartbeat_fails(settings, value, checks):
    assert set(error_ids(settings, {"EVENTS_HEARTBEAT": value})) == {
        f"jwt_sessions.{check}" for check in checks}


@pytest.mark.parametrize(("value", "check"), [
    ({"ACCESS_TOKEN_LIFETIME": 10 ** 20}, "E002"),  # seconds no timedelta holds
    ({"AUDIT_RETENTION": float("inf")}, "E002"),
    ({"LEEWAY": float("nan")}, "E002"),
    ({"LOCAL_CACHE": {"max_age": float("nan")}}, "E025"),
    ({"LOCAL_CACHE": {"max_age": float("inf")}}, "E025"),
])
def test_a_number_no_timedelta_holds_is_reported(settings, value, check):
    assert error_ids(settings, value) == [f"jwt_sessions.{check}"]


def test_a_nan_dpop_duration_is_reported_not_a_crash(settings):
    from django.core import checks

    settings.JWT_SESSIONS = {**settings.JWT_SESSIONS, "DPOP": {"PROOF_MAX_AGE": float("nan")}}
    assert "jwt_sessions.E044" in {m.id for m in checks.run_checks()}


@pytest.mark.parametrize("alias", [["default"], {"default": 1}, 7, None])
def test_a_cache_alias_that_is_no_string_names_no_cache(settings, alias):
    assert error_ids(settings, {"CACHE_ALIAS": alias}) == ["jwt_sessions.E010"]


@pytest.mark.parametrize("backend", [
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.redis.RedisCache",  # Django's own: no django-redis client
    "django.core.cache.backends.dummy.DummyCache",
    "no.such.Backend", None,
])
def test_a_cache_that_is_not_django_redis_is_an_error(settings, backend):
    settings.CACHES = {**settings.CACHES, "other": {"BACKEND": backend,
                                                    "LOCATION": "redis://127.0.0.1:6379/0"}}
    assert error_ids(settings, {"CACHE_ALIAS": "other"}) == ["jwt_sessions.E030"]


class SubclassedRedisCache(RedisCache):
    """A project's own django-redis cache (e.g. one that adds metrics)."""


def test_a_django_redis_subclass_is_a_redis_cache(settings):
    settings.CACHES = {**settings.CACHES, "other": {
        **settings.CACHES["default"], "BACKEND": f"{__name__}.SubclassedRedisCache"}}
    assert error_ids(settings, {"CACHE_ALIAS": "other"}) == []


@pytest.mark.parametrize("location", ["redis://[::1:6379/0", "redis://127.0.0.1:port/0",
                                      ["redis://127.0.0.1:6379/0", "redis://[::1"]])
def test_an_unparsable_location_is_an_error(settings, location):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": location}}
    assert error_ids(settings, {}) == ["jwt_sessions.E031"]
