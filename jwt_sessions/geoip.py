"""Location from IP: "Berlin, Germany" when a GeoIP2 City database is configured."""
from __future__ import annotations


def locate(ip: str | None) -> str | None:
    """A short readable place for an IP, or None (no database, private IP, no match)."""
    return None
