"""Location from IP: a readable place when GeoIP is configured, else null,
and never a failed login because of it."""
from __future__ import annotations

import logging
import sys

import pytest
from django.core import checks

from jwt_sessions import geoip
from jwt_sessions.models import Session
from tests.mmdb_builder import build_database

pytestmark = pytest.mark.django_db

BERLIN_IP = "81.2.69.10"
COUNTRY_ONLY_IP = "1.1.1.1"
V6_IP = "2a01:4f8::1"
UNLISTED_IP = "8.8.8.8"
# Present in the database, yet never looked up: no real database can place them.
NON_GLOBAL_IPS = ["203.0.113.7", "10.1.2.3", "127.0.0.1", "192.168.0.1", "::1"]

PLACES = {
    "81.2.69.0/24": ("Berlin", "Germany"),
    "1.1.1.0/24": (None, "Australia"),
    "2a01:4f8::/32": ("Falkenstein", "Germany"),
    "203.0.113.0/24": ("Nowhere", "Documentation"),
    "10.0.0.0/8": ("Intranet", "Private"),
    "127.0.0.0/8": ("Localhost", "Loopback"),
    "192.168.0.0/16": ("Home", "Private"),
}


@pytest.fixture
def city_db(tmp_path):
    return build_database(tmp_path / "city.mmdb", PLACES)


@pytest.fixture
def geoip_on(city_db, jwt_settings):
    jwt_settings(GEOIP_PATH=str(city_db))
    return city_db


def _geoip_warnings() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks() if m.id == "jwt_sessions.W001"]


@pytest.mark.usefixtures("geoip_on")
@pytest.mark.parametrize(("ip", "place"), [
    (BERLIN_IP, "Berlin, Germany"),
    (COUNTRY_ONLY_IP, "Australia"),
    (V6_IP, "Falkenstein, Germany"),
    (f"::ffff:{BERLIN_IP}", "Berlin, Germany"),
    (UNLISTED_IP, None),
    *[(ip, None) for ip in NON_GLOBAL_IPS],
    ("not an ip", None),
    ("", None),
    (None, None),
])
def test_locate_names_city_and_country(ip, place):
    assert geoip.locate(ip) == place


def test_locate_is_none_without_geoip_path(city_db):
    assert geoip.locate(BERLIN_IP) is None


def test_country_database_gives_country_only(tmp_path, jwt_settings):
    path = build_database(tmp_path / "country.mmdb", {"81.2.69.0/24": (None, "Germany")},
                          database_type="GeoLite2-Country")
    jwt_settings(GEOIP_PATH=str(path))
    assert geoip.locate(BERLIN_IP) == "Germany"


def test_login_stores_location_shown_by_sessions_api(api, user, geoip_on):
    data = api.login_ok(user.username, ip=BERLIN_IP)
    assert Session.objects.get(pk=data["session_id"]).location == "Berlin, Germany"
    api.login_ok(user.username, ip="10.9.8.7")
    listed = {s["ip_address"]: s["location"] for s in api.sessions(data["access"]).json()}
    assert listed == {BERLIN_IP: "Berlin, Germany", "10.9.8.7": None}


def test_admin_list_shows_location(api, user, make_user, geoip_on):
    api.login_ok(user.username, ip=BERLIN_IP)
    admin = make_user(is_staff=True, is_superuser=True)
    api.client.force_login(admin)
    page = api.client.get("/admin/jwt_sessions/session/")
    assert page.status_code == 200
    assert "Berlin, Germany" in page.content.decode()


def test_location_is_null_without_geoip(api, user):
    data = api.login_ok(user.username, ip=BERLIN_IP)
    assert [s["location"] for s in api.sessions(data["access"]).json()] == [None]


def test_reader_is_opened_once_and_reopened_on_settings_change(tmp_path, geoip_on,
                                                              jwt_settings, monkeypatch):
    opened = []
    real_open = geoip.open_lookup
    monkeypatch.setattr(geoip, "open_lookup", lambda path: opened.append(path)
                        or real_open(path))
    for _ in range(3):
        assert geoip.locate(BERLIN_IP) == "Berlin, Germany"
    assert opened == [str(geoip_on)]
    moved = build_database(tmp_path / "moved.mmdb", {"81.2.69.0/24": ("Paris", "France")})
    jwt_settings(GEOIP_PATH=str(moved))
    assert geoip.locate(BERLIN_IP) == "Paris, France"
    assert opened == [str(geoip_on), str(moved)]


@pytest.mark.parametrize("bad_path", ["missing.mmdb", "not-a-db.mmdb", 42])
def test_unusable_database_warns_at_startup_and_login_still_works(
        api, user, tmp_path, jwt_settings, caplog, bad_path):
    (tmp_path / "not-a-db.mmdb").write_bytes(b"this is not a MaxMind database")
    jwt_settings(GEOIP_PATH=bad_path if isinstance(bad_path, int) else str(tmp_path / bad_path))
    assert len(_geoip_warnings()) == 1
    with caplog.at_level(logging.WARNING, logger="jwt_sessions"):
        data = api.login_ok(user.username, ip=BERLIN_IP)
    assert Session.objects.get(pk=data["session_id"]).location is None
    assert "GeoIP disabled" in caplog.text


def test_missing_geoip2_package_warns_and_login_still_works(api, user, geoip_on,
                                                            monkeypatch):
    monkeypatch.setitem(sys.modules, "geoip2.database", None)  # import fails
    [warning] = _geoip_warnings()
    assert "geoip2 package is not installed" in warning.msg
    data = api.login_ok(user.username, ip=BERLIN_IP)
    assert Session.objects.get(pk=data["session_id"]).location is None


def test_usable_database_passes_the_check(geoip_on):
    assert _geoip_warnings() == []


def test_failing_lookup_is_logged_and_login_still_works(api, user, geoip_on, monkeypatch,
                                                        caplog):
    def broken(address):
        raise ValueError("damaged search tree")

    monkeypatch.setattr(geoip, "_lookup", lambda: broken)
    with caplog.at_level(logging.WARNING, logger="jwt_sessions"):
        data = api.login_ok(user.username, ip=BERLIN_IP)
    assert Session.objects.get(pk=data["session_id"]).location is None
    assert "GeoIP lookup failed (ValueError)" in caplog.text
