"""Build a tiny MaxMind-format (GeoIP2 City layout) database for the GeoIP tests.

No real GeoLite2 database can be downloaded here, so the tests write their own with
`mmdb-writer`: each network maps to a city and country name, or a country alone.
"""
from __future__ import annotations

from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet


def build_database(path: Path, places: dict[str, tuple[str | None, str]],
                   database_type: str = "GeoLite2-City") -> Path:
    """Write `places` ({network: (city or None, country)}) as a GeoIP2 database."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type,
                        languages=["en"], description={"en": "jwt_sessions test data"})
    for network, (city, country) in places.items():
        record: dict = {"country": {"names": {"en": country}}}
        if city:
            record["city"] = {"names": {"en": city}}
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path
