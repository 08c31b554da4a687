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
from bisect import bisect_right
from collections.abc import Mapping
from pathlib import Path
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
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


# Addresses that are not public, from IANA's special-purpose address registries: private,
# shared (CGNAT), loopback, link-local, documentation, benchmarking, protocol assignments,
# multicast and reserved. (ipaddress's ``is_global`` says about the same but walks a list of
# network objects: ~30 µs an address, against ~1 µs for inet_pton and a bisect here.)
_V4_NOT_PUBLIC: Final = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/3",  # multicast (224/4) and reserved (240/4, with the broadcast address)
)
# Only the global unicast block 2000::/3 is public, less these parts of it.
_V6_PUBLIC: Final = ipaddress.IPv6Network("2000::/3")
_V6_NOT_PUBLIC: Final = (
    "2001::/23",  # protocol assignments (Teredo among them)
    "2001:db8::/32",  # documentation
    "2002::/16",  # 6to4
    "3fff::/20",  # documentation
)


def _ranges(networks: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """Sorted first addresses and last addresses of ``networks`` (for a bisect)."""
    parsed = sorted(ipaddress.ip_network(network) for network in networks)
    return [int(n.network_address) for n in parsed], [int(n.broadcast_address) for n in parsed]


_V4_RANGES: Final = _ranges(_V4_NOT_PUBLIC)
_V6_RANGES: Final = _ranges(_V6_NOT_PUBLIC)
_V6_PUBLIC_FIRST: Final = int(_V6_PUBLIC.network_address)
_V6_PUBLIC_LAST: Final = int(_V6_PUBLIC.broadcast_address)
_V4_MAPPED_PREFIX: Final = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96


def _in_ranges(value: int, ranges: tuple[list[int], list[int]]) -> bool:
    firsts, lasts = ranges
    i = bisect_right(firsts, value) - 1
    return i >= 0 and value <= lasts[i]


def public_address(address: str) -> str | None:
    """``address`` as the text to look up when it is a public (globally routed) unicast
    address, else None (not an address, or private, loopback, link-local, reserved...)."""
    # (inet_pton parses in C: a tenth of ipaddress's cost, and as strict: no leading zeros)
    try:
        packed = inet_pton(AF_INET, address)
    except OSError:
        try:
            packed = inet_pton(AF_INET6, address.split("%", 1)[0])  # drop an IPv6 zone id
        except OSError:
            return None
        if packed[:12] != _V4_MAPPED_PREFIX:
            value = int.from_bytes(packed)
            if not _V6_PUBLIC_FIRST <= value <= _V6_PUBLIC_LAST or _in_ranges(value, _V6_RANGES):
                return None
            return address.split("%", 1)[0]
        packed = packed[12:]
        address = inet_ntop(AF_INET, packed)
    if _in_ranges(int.from_bytes(packed), _V4_RANGES):
        return None
    return address


def _country_code(value: object) -> str | None:
    """A database's country code, checked: two ASCII letters, upper-cased; else None (also for
    ``ZZ``, which some databases give addresses of no known country)."""
    if not isinstance(value, str) or len(value) != 2:
        return None
    code = value.upper()
    return code if _ASCII_UPPER.issuperset(code) and code != "ZZ" else None


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
