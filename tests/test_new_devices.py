"""A login from a device, country or network none of the user's recent sessions used: the
`new_device_login` signal, the optional email, the mark in the device list."""
from __future__ import annotations

import pytest
from django.core import mail

from jwt_sessions import new_devices, signals
from jwt_sessions.clients import ClientInfo
from jwt_sessions.models import Session
from tests.conftest import UA_IPHONE, UA_MAC_CHROME
from tests.mmdb_builder import build_database

pytestmark = pytest.mark.django_db(transaction=True)  # the announcement waits for the commit

BERLIN_IP, BERLIN_NEIGHBOUR_IP, MUNICH_IP = "81.2.69.10", "81.2.69.200", "81.2.70.5"
SYDNEY_IP = "1.1.1.1"
UA_MAC_CHROME_NEWER = UA_MAC_CHROME.replace("Chrome/131", "Chrome/132")
UA_WINDOWS_FIREFOX = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 "
                      "Firefox/133.0")


@pytest.fixture
def geoip(tmp_path, jwt_settings):
    places = {"81.2.69.0/24": ("Berlin", "Germany"), "81.2.70.0/24": ("Munich", "Germany"),
              "1.1.1.0/24": ("Sydney", "Australia")}
    jwt_settings(GEOIP_PATH=str(build_database(tmp_path / "city.mmdb", places)))


@pytest.fixture
def heard(signal_log):
    return signal_log(signals.new_device_login)


def novelty(api, username, **login) -> list[str]:
    return Session.objects.get(pk=api.login_ok(username, **login)["session_id"]).novelty


# ------------------------------------------------------------------ what is new
def test_first_login_is_new_to_nobody(api, user, heard):
    assert novelty(api, user.username, ip=BERLIN_IP) == []
    assert heard == []


def test_same_device_and_network_is_not_new(api, user, heard, geoip):
    api.login_ok(user.username, ip=BERLIN_IP)
    assert novelty(api, user.username, ua=UA_MAC_CHROME_NEWER, ip=BERLIN_NEIGHBOUR_IP) == []
    assert heard == []


def test_another_device_is_new(api, user, heard, geoip):
    api.login_ok(user.username, ip=BERLIN_IP)
    assert novelty(api, user.username, ua=UA_IPHONE, ip=BERLIN_NEIGHBOUR_IP) == ["device"]
    assert [call["novelty"] for call in heard] == [["device"]]


def test_another_network_in_the_same_country_is_only_a_new_network(api, user, geoip):
    api.login_ok(user.username, ip=BERLIN_IP)
    assert novelty(api, user.username, ip=MUNICH_IP) == ["network"]


def test_another_country_is_new(api, user, heard, geoip):
    api.login_ok(user.username, ip=BERLIN_IP)
    assert novelty(api, user.username, ua=UA_WINDOWS_FIREFOX, ip=SYDNEY_IP) == [
        "device", "country", "network"]
    (call,) = heard
    assert call["user"] == user
    assert call["session"].country == "Australia"
    assert call["request"] is not None


def test_without_geoip_the_country_is_never_new(api, user):
    api.login_ok(user.username, ip=BERLIN_IP)
    assert novelty(api, user.username, ip=SYDNEY_IP) == ["network"]


def test_known_from_any_recent_session_even_an_ended_one(api, user, geoip):
    phone = api.login_ok(user.username, ua=UA_IPHONE, ip=SYDNEY_IP)
    api.logout(phone["access"])
    api.login_ok(user.username, ip=BERLIN_IP)
    assert novelty(api, user.username, ua=UA_IPHONE, ip=SYDNEY_IP) == []


def test_rows_from_before_the_check_count_as_unknown(api, user, geoip):
    api.login_ok(user.username, ip=BERLIN_IP)
    Session.objects.update(device_family="", country="", network="")  # as migrated
    assert novelty(api, user.username, ua=UA_IPHONE, ip=SYDNEY_IP) == []


def test_only_the_users_own_sessions_count(api, user, make_user, geoip):
    api.login_ok(make_user().username, ua=UA_IPHONE, ip=SYDNEY_IP)
    api.login_ok(user.username, ip=BERLIN_IP)
    assert novelty(api, user.username, ua=UA_IPHONE, ip=SYDNEY_IP) == [
        "device", "country", "network"]


@pytest.mark.parametrize(("ip", "network"), [
    ("81.2.69.10", "81.2.69.0/24"),
    ("2a01:4f8:1:2:3:4:5:6", "2a01:4f8:1:2::/64"),
    ("::ffff:81.2.69.10", "81.2.69.0/24"),
    (None, ""),
])
def test_network_is_the_24_or_the_64(ip, network):
    assert new_devices.network_of(ip) == network


def test_device_family_ignores_versions_and_needs_a_user_agent():
    chrome = ClientInfo(user_agent="x", browser="Chrome 131", os="macOS", device_type="pc",
                        browser_family="Chrome")
    assert new_devices.device_family_of(chrome) == "Chrome / macOS / pc"
    assert new_devices.device_family_of(ClientInfo()) == ""


def test_a_login_without_a_request_is_new_to_nobody(api, user, heard):
    from jwt_sessions import api as jwt_api

    api.login_ok(user.username, ip=BERLIN_IP)
    jwt_api.issue_tokens(user)
    assert heard == []


def test_a_refused_login_announces_nothing(api, user, heard, jwt_settings):
    jwt_settings(MAX_SESSIONS_PER_USER=1, MAX_SESSIONS_POLICY="refuse")
    api.login_ok(user.username, ip=BERLIN_IP)
    assert api.login(user.username, ua=UA_IPHONE, ip=SYDNEY_IP).status_code == 403
    assert heard == []


# ------------------------------------------------------------------ the device list
def test_device_list_marks_the_new_session(api, user, geoip):
    laptop = api.login_ok(user.username, ip=BERLIN_IP)
    phone = api.login_ok(user.username, ua=UA_IPHONE, ip=SYDNEY_IP)
    rows = {row["id"]: row for row in api.sessions(laptop["access"]).json()}
    assert rows[laptop["session_id"]]["new_device"] is False
    assert rows[laptop["session_id"]]["novelty"] == []
    assert rows[phone["session_id"]]["new_device"] is True
    assert rows[phone["session_id"]]["novelty"] == ["device", "country", "network"]


# ------------------------------------------------------------------ the email
def test_no_email_by_default(api, make_user):
    alice = make_user(email="alice@example.com")
    api.login_ok(alice.username, ip=BERLIN_IP)
    api.login_ok(alice.username, ua=UA_IPHONE, ip=SYDNEY_IP)
    assert mail.outbox == []


def test_email_tells_the_user_what_was_new(api, make_user, geoip, jwt_settings):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    alice = make_user(email="alice@example.com")
    api.login_ok(alice.username, ip=BERLIN_IP)
    assert mail.outbox == []  # the first login is new to nobody
    api.login_ok(alice.username, ua=UA_IPHONE, ip=SYDNEY_IP)
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.subject == "New sign-in to your account (Sydney, Australia)"
    assert "Mobile Safari 17 on iOS (iPhone) (new)" in message.body
    assert "Sydney, Australia (new)" in message.body
    assert "1.1.1.1 (new)" in message.body
    (html, mime), = message.alternatives
    assert mime == "text/html" and "<strong>(new)</strong>" in html


def test_email_says_only_what_was_new(api, make_user, geoip, jwt_settings):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    alice = make_user(email="alice@example.com")
    api.login_ok(alice.username, ip=BERLIN_IP)
    api.login_ok(alice.username, ip=MUNICH_IP)
    (message,) = mail.outbox
    assert "81.2.70.5 (new)" in message.body
    assert "Munich, Germany (new)" not in message.body


def test_email_escapes_the_user_agent_in_html(api, make_user, geoip, jwt_settings):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    alice = make_user(email="alice@example.com")
    api.login_ok(alice.username, ip=BERLIN_IP)
    api.login_ok(alice.username, ua="<script>alert(1)</script>", ip=SYDNEY_IP)
    (html, _), = mail.outbox[0].alternatives
    assert "<script>" not in html


def test_no_email_for_a_user_without_an_address(api, user, geoip, jwt_settings, heard):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    api.login_ok(user.username, ip=BERLIN_IP)
    api.login_ok(user.username, ua=UA_IPHONE, ip=SYDNEY_IP)
    assert mail.outbox == []
    assert len(heard) == 1  # the signal still goes out


def test_a_failing_mail_server_does_not_fail_the_login(api, make_user, geoip, jwt_settings,
                                                       settings, caplog):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    settings.EMAIL_BACKEND = "tests.test_new_devices.BrokenBackend"
    alice = make_user(email="alice@example.com")
    api.login_ok(alice.username, ip=BERLIN_IP)
    api.login_ok(alice.username, ua=UA_IPHONE, ip=SYDNEY_IP)
    assert "could not be sent" in caplog.text


def test_templates_can_be_overridden(api, make_user, geoip, jwt_settings, settings, tmp_path):
    jwt_settings(NEW_DEVICE_EMAIL=True)
    folder = tmp_path / "jwt_sessions" / "email"
    folder.mkdir(parents=True)
    (folder / "new_device_subject.txt").write_text("Was it you, {{ user.get_username }}?")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    alice = make_user(email="alice@example.com")
    api.login_ok(alice.username, ip=BERLIN_IP)
    api.login_ok(alice.username, ua=UA_IPHONE, ip=SYDNEY_IP)
    assert mail.outbox[0].subject == f"Was it you, {alice.username}?"


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("no mail server here")


def test_admin_page_shows_what_was_new(api, user, geoip, admin_client):
    from django.urls import reverse

    api.login_ok(user.username, ip=BERLIN_IP)
    phone = api.login_ok(user.username, ua=UA_IPHONE, ip=SYDNEY_IP)
    html = admin_client.get(reverse("admin:jwt_sessions_session_change",
                                    args=[phone["session_id"]])).content.decode()
    assert "New device check" in html and "1.1.1.0/24" in html and "Australia" in html


def test_a_failing_receiver_does_not_fail_the_login_nor_the_email(api, make_user, geoip,
                                                                  jwt_settings, caplog):
    """The session is committed when the signal goes out: a receiver's error must not
    turn the login into a 500 that leaves the client without its tokens."""
    jwt_settings(NEW_DEVICE_EMAIL=True)

    def broken(**kwargs):
        raise RuntimeError("the project's receiver fails")

    signals.new_device_login.connect(broken, sender=Session)
    try:
        alice = make_user(email="alice@example.com")
        api.login_ok(alice.username, ip=BERLIN_IP)
        api.login_ok(alice.username, ua=UA_IPHONE, ip=SYDNEY_IP)
    finally:
        signals.new_device_login.disconnect(broken, sender=Session)
    assert "new_device_login receiver" in caplog.text
    assert "the project's receiver fails" in caplog.text
    assert len(mail.outbox) == 1
