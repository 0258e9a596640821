"""Who is calling: User-Agent parsing and the client IP behind NUM_PROXIES."""
import pytest
from django.test import RequestFactory

from jwt_sessions.clients import MAX_USER_AGENT, client_info, client_ip
from tests.conftest import UA_IPHONE, UA_MAC_CHROME

UA_ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Mobile Safari/537.36")


def request(**meta):
    return RequestFactory().get("/", **meta)


@pytest.fixture
def proxies(settings):
    def set_proxies(count):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": count}

    return set_proxies


def test_client_info_without_request_is_empty():
    info = client_info(None)
    assert (info.user_agent, info.browser, info.os, info.device, info.device_type,
            info.ip_address) == ("", "", "", "", "other", None)


def test_browser_name_carries_major_version_only():
    info = client_info(request(HTTP_USER_AGENT=UA_MAC_CHROME))
    assert info.browser == "Chrome 131"
    assert info.os == "macOS"


def test_android_phone_is_mobile_with_model_name():
    info = client_info(request(HTTP_USER_AGENT=UA_ANDROID))
    assert (info.device_type, info.os, info.device) == ("mobile", "Android", "Pixel 8")
    assert info.browser.startswith("Chrome Mobile")


def test_unknown_or_missing_user_agent_is_other_with_empty_names():
    for ua in ("", "curl/8.0", "garbage \x00 value"):
        info = client_info(request(HTTP_USER_AGENT=ua))
        assert info.device_type == "other"
        assert info.os == "" and info.device == ""


def test_huge_user_agent_is_truncated():
    info = client_info(request(HTTP_USER_AGENT=UA_IPHONE + "x" * 100_000))
    assert len(info.user_agent) == MAX_USER_AGENT
    assert info.device_type == "mobile"


def test_remote_addr_is_the_client_by_default():
    assert client_ip(request(REMOTE_ADDR="192.0.2.1",
                             HTTP_X_FORWARDED_FOR="203.0.113.5")) == "192.0.2.1"


def test_ipv6_remote_addr_is_normalised():
    assert client_ip(request(REMOTE_ADDR="2001:DB8:0:0::1")) == "2001:db8::1"


def test_invalid_remote_addr_is_none():
    assert client_ip(request(REMOTE_ADDR="not-an-ip")) is None
    assert client_ip(request(REMOTE_ADDR="")) is None


@pytest.mark.parametrize(("count", "expected"), [
    (1, "198.51.100.3"), (2, "198.51.100.2"), (3, "198.51.100.1"),
])
def test_num_proxies_counts_hops_from_the_right(proxies, count, expected):
    proxies(count)
    meta = {"REMOTE_ADDR": "10.0.0.1",
            "HTTP_X_FORWARDED_FOR": "6.6.6.6,198.51.100.1, 198.51.100.2 ,198.51.100.3"}
    assert client_ip(request(**meta)) == expected


def test_num_proxies_without_forwarded_for_uses_remote_addr(proxies):
    proxies(1)
    assert client_ip(request(REMOTE_ADDR="192.0.2.1")) == "192.0.2.1"


def test_num_proxies_zero_trusts_no_header(proxies):
    proxies(0)
    assert client_ip(request(REMOTE_ADDR="192.0.2.1",
                             HTTP_X_FORWARDED_FOR="203.0.113.5")) == "192.0.2.1"


def test_num_proxies_larger_than_the_chain_takes_the_leftmost(proxies):
    proxies(5)
    assert client_ip(request(REMOTE_ADDR="10.0.0.1",
                             HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.1")) == "203.0.113.5"


def test_garbage_at_the_trusted_hop_is_none(proxies):
    proxies(1)
    assert client_ip(request(REMOTE_ADDR="10.0.0.1",
                             HTTP_X_FORWARDED_FOR="203.0.113.5, <script>")) is None
