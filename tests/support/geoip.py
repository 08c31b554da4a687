"""Small MaxMind DB (``.mmdb``) files for tests of ``ADTRACK_GEOIP_DB``, written with
``mmdb-writer`` and read back by ``maxminddb`` exactly as a downloaded database is."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

__all__ = ["write_country_mmdb"]


def write_country_mmdb(
    path: Path,
    records: Mapping[str, Mapping[str, object]],
    *,
    ip_version: int = 6,
) -> Path:
    """A database mapping each network (``"8.8.8.0/24"``) to its record (as GeoLite2 and
    DB-IP lay them out: ``{"country": {"iso_code": "US"}}``)."""
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type="Test-Country",
        languages=["en"],
        description="adtrack test countries",
    )
    for network, record in records.items():
        writer.insert_network(IPSet([network]), dict(record))
    writer.to_db_file(str(path))
    return path
