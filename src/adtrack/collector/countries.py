"""The country of a client address, from an offline database (no network at run time).

* The bundled database is ``iptocc``'s: the regional internet registries' delegation files
  (ARIN, RIPE NCC, APNIC, LACNIC, AFRINIC), compiled into the package, refreshed with each of
  its releases. It gives the country a block is *registered* in, which for the vast majority of
  addresses is where it is used.
* ``ADTRACK_GEOIP_DB=/path/file.mmdb`` uses an operator's MaxMind DB file instead (DB-IP's
  "IP to Country Lite", MaxMind's GeoLite2/GeoIP2 Country or City, or any file with the same
  ``country.iso_code`` layout), read with ``maxminddb`` (memory-mapped, shared by the
  processes that open it).

Addresses that are not public (private, loopback, link-local, shared, reserved, multicast,
documentation ranges) have no country. An IPv4-mapped IPv6 address is looked up as IPv4.
Lookups here are not cached: the collector caches their result per address
(:mod:`adtrack.collector.visitor`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Protocol

import iptocc
import maxminddb

__all__ = [
    "BundledCountries",
    "CountryDatabase",
    "GeoDatabaseError",
    "MmdbCountries",
    "check_country_database",
    "open_country_database",
    "public_address",
]

_ASCII_UPPER: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class GeoDatabaseError(ValueError):
    """The configured ``.mmdb`` file cannot be used (the message names the setting)."""


class CountryDatabase(Protocol):
    """Where an address is: ISO 3166-1 alpha-2 (upper case), or None."""

    def country(self, address: str) -> str | None: ...


def public_address(address: str) -> str | None:
    """``address`` in its plain form when it is a public (globally routed) unicast address,
    else None (not an address, or private, loopback, link-local, reserved...)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if not parsed.is_global or parsed.is_multicast:
        return None
    return str(parsed)


def _country_code(value: object) -> str | None:
    """A database's country code, checked: two ASCII letters, upper-cased; else None."""
    if not isinstance(value, str) or len(value) != 2:
        return None
    code = value.upper()
    return code if _ASCII_UPPER.issuperset(code) else None


class BundledCountries:
    """The database that installs with adtrack (``iptocc``)."""

    source = "bundled registry data (iptocc)"

    def country(self, address: str) -> str | None:
        public = public_address(address)
        if public is None:
            return None
        return _country_code(iptocc.country_code(public))


class MmdbCountries:
    """A MaxMind DB file with ``country.iso_code`` (else ``registered_country.iso_code``)."""

    def __init__(self, path: Path) -> None:
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoDatabaseError(
                f"ADTRACK_GEOIP_DB: cannot read {path} as a MaxMind DB (.mmdb) file: {exc}"
            ) from None
        self.source = f"{path} ({self._reader.metadata().database_type})"

    def country(self, address: str) -> str | None:
        public = public_address(address)
        if public is None:
            return None
        try:
            record = self._reader.get(public)
        except (ValueError, maxminddb.InvalidDatabaseError):
            return None  # an IPv6 address in an IPv4-only database; a damaged record
        if not isinstance(record, Mapping):
            return None
        for key in ("country", "registered_country"):
            place = record.get(key)
            if isinstance(place, Mapping):
                code = _country_code(place.get("iso_code"))
                if code is not None:
                    return code
        return None

    def close(self) -> None:
        self._reader.close()


def open_country_database(path: Path | None) -> CountryDatabase:
    """The database at ``path`` (``ADTRACK_GEOIP_DB``), else the bundled one.

    Raises :class:`GeoDatabaseError` when ``path`` is given but is not a readable ``.mmdb``
    file, so a collector never starts without the countries its operator asked for.
    """
    if path is None:
        return BundledCountries()
    return MmdbCountries(path)


def check_country_database(path: Path | None) -> None:
    """Open and close ``ADTRACK_GEOIP_DB`` once, so that a process can refuse to start with
    :class:`GeoDatabaseError` before it starts anything else."""
    database = open_country_database(path)
    if isinstance(database, MmdbCountries):
        database.close()
