"""Location from IP: "Berlin, Germany" when a GeoIP2/GeoLite2 database is configured.

Optional: `pip install 'jwt_sessions[geoip]'` and `JWT_SESSIONS["GEOIP_PATH"]` naming a
City (or Country) `.mmdb` file. The reader is opened once per process and kept until the
settings change. Nothing here ever raises: a login must not fail for want of a place name.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address
from typing import Any

from .conf import cached_per_settings, jwt_settings

logger = logging.getLogger("jwt_sessions")

MAX_LENGTH = 200  # Session.location


class GeoIPUnavailable(Exception):
    """GEOIP_PATH is set but cannot be used; the message says why and how to fix it."""


def open_lookup(path: str | os.PathLike) -> Callable[[str], Any]:
    """The lookup of a GeoIP2 City (or Country) database: `reader.city` or
    `reader.country`; raises GeoIPUnavailable saying why the file cannot serve."""
    try:
        name = os.fspath(path)
    except TypeError as exc:
        raise GeoIPUnavailable("GEOIP_PATH must be a path (str or pathlib.Path)") from exc
    try:
        import geoip2.database
    except ImportError as exc:
        raise GeoIPUnavailable("the geoip2 package is not installed "
                               "(pip install 'jwt_sessions[geoip]')") from exc
    if not os.path.isfile(name):
        raise GeoIPUnavailable(f"GEOIP_PATH {name!r} is not a file")
    try:
        reader = geoip2.database.Reader(name)
    except Exception as exc:  # maxminddb raises several types for a file it cannot read
        raise GeoIPUnavailable(f"GEOIP_PATH {name!r} is not a MaxMind DB file "
                               f"({type(exc).__name__})") from exc
    kind = reader.metadata().database_type
    if "City" in kind:
        return reader.city
    if "Country" in kind:
        return reader.country
    reader.close()
    raise GeoIPUnavailable(f"the GeoIP database type {kind!r} has no city or country "
                           "data; use a GeoLite2/GeoIP2 City database")


@cached_per_settings
def _lookup() -> Callable[[str], Any] | None:
    """The process's lookup (None without GeoIP), opened on first use after a reload."""
    path = jwt_settings.GEOIP_PATH
    if not path:
        return None
    try:
        return open_lookup(path)
    except GeoIPUnavailable as exc:
        logger.warning("GeoIP disabled: %s", exc)
        return None


def _routable(ip: str) -> str | None:
    """The address to look up, or None when no database can place it (private,
    loopback, reserved, documentation ranges...) or it is not an address at all."""
    try:
        address = ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address) if address.is_global else None


@dataclass(frozen=True)
class Place:
    """Where an address is: `location` to show ("Berlin, Germany"), `country` to compare
    (the ISO code, or the name when the database has no code)."""

    location: str | None = None
    country: str | None = None


NOWHERE = Place()


def _describe(record: Any) -> Place:
    city = getattr(getattr(record, "city", None), "name", None)
    country = record.country.name
    location = ", ".join(part for part in (city, country) if part)[:MAX_LENGTH]
    code = record.country.iso_code or country
    return Place(location or None, code[:MAX_LENGTH] if code else None)


def place_of(ip: str | None) -> Place:
    """Where an IP is, or NOWHERE (no database, private IP, no match)."""
    lookup = _lookup()
    address = _routable(ip) if ip else None
    if lookup is None or address is None:
        return NOWHERE
    from geoip2.errors import AddressNotFoundError  # installed, as a lookup exists

    try:
        return _describe(lookup(address))
    except AddressNotFoundError:
        logger.debug("GeoIP: no place for this address")
    except Exception as exc:  # a damaged file: log it, never fail the login
        logger.warning("GeoIP lookup failed (%s)", type(exc).__name__)
    return NOWHERE


def locate(ip: str | None) -> str | None:
    """A short readable place for an IP, or None (no database, private IP, no match)."""
    return place_of(ip).location
