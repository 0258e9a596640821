"""Who is calling: the client IP (proxies trusted only as DRF's NUM_PROXIES says) and a
readable device from the User-Agent."""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network

from rest_framework.settings import api_settings
from user_agents import parse

MAX_USER_AGENT = 1000


@dataclass(frozen=True)
class ClientInfo:
    user_agent: str = ""
    browser: str = ""
    os: str = ""
    device: str = ""
    device_type: str = "other"
    ip_address: str | None = None
    browser_family: str = ""  # the browser without its version: "Chrome"


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """REMOTE_ADDR, or with DRF's NUM_PROXIES = n the n-th address from the right of
    X-Forwarded-For: only the part our own proxies appended can be trusted."""
    meta = getattr(request, "META", {})
    remote = meta.get("REMOTE_ADDR")
    proxies = api_settings.NUM_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return _valid_ip(remote)
    hops = [part.strip() for part in forwarded.split(",")]
    return _valid_ip(hops[-min(proxies, len(hops))])


def client_network(request) -> str | None:
    """Who a per-address throttle counts: an IPv4 client by its address, an IPv6 client
    by its /64 (one host picks addresses from its /64 at will; RFC 4941) and an
    IPv4-mapped IPv6 address as the IPv4 address it is."""
    ip = client_ip(request)
    if ip is None:
        return None
    address = ip_address(ip)
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ip_network(f"{address}/64", strict=False))
    return ip


# What people call these systems.
_OS_NAMES = {"Mac OS X": "macOS"}


def _device_type(agent) -> str:
    if agent.is_bot:
        return "bot"
    if agent.is_tablet:
        return "tablet"
    if agent.is_mobile:
        return "mobile"
    if agent.is_pc:
        return "pc"
    return "other"


def _name(family: str, version: str) -> str:
    if not family or family == "Other":
        return ""
    return f"{family} {version}".strip()[:100]


def client_info(request) -> ClientInfo:
    """Parse the request's User-Agent with `user-agents`; empty fields without a request."""
    if request is None:
        return ClientInfo()
    # Without NUL characters, which PostgreSQL refuses in text (a 500 at login).
    raw = str(getattr(request, "META", {}).get("HTTP_USER_AGENT", "")).replace(
        "\x00", "")[:MAX_USER_AGENT]
    agent = parse(raw)
    browser = _name(agent.browser.family, agent.browser.version_string.split(".")[0])
    os_name = _name(_OS_NAMES.get(agent.os.family, agent.os.family), "")
    device = "" if agent.device.family in ("Other", "") else agent.device.family[:100]
    return ClientInfo(raw, browser, os_name, device, _device_type(agent), client_ip(request),
                      _name(agent.browser.family, ""))
