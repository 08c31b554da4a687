"""Countries of client addresses: the bundled registry data, an operator's .mmdb file
(``ADTRACK_GEOIP_DB``), and the addresses that have no country."""

from __future__ import annotations

from pathlib import Path

import pytest

from adtrack.collector.countries import (
    BundledCountries,
    GeoDatabaseError,
    MmdbCountries,
    check_country_database,
    open_country_database,
    public_address,
)
from tests.support.geoip import write_country_mmdb

# One address of each regional internet registry (and IPv6), with the country the registries'
# delegation files give its block.
REGISTRY_ADDRESSES = [
    ("8.8.8.8", "US"),  # ARIN (Google Public DNS)
    ("193.0.6.139", "NL"),  # RIPE NCC (www.ripe.net)
    ("202.12.29.205", "AU"),  # APNIC (www.apnic.net)
    ("1.0.16.1", "JP"),  # APNIC
    ("200.160.2.3", "BR"),  # LACNIC (NIC.br)
    ("196.216.2.1", "ZA"),  # AFRINIC
    ("2001:4860:4860::8888", "US"),  # ARIN, IPv6
    ("2001:67c:2e8::1", "NL"),  # RIPE NCC, IPv6
    ("::ffff:8.8.8.8", "US"),  # IPv4-mapped: looked up as IPv4
]

NOT_PUBLIC = [
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "127.0.0.1",  # loopback
    "::1",
    "169.254.10.20",  # link-local
    "fe80::1",
    "fe80::1%eth0",  # with a zone id
    "fd00::1",  # unique local
    "100.64.0.1",  # shared (carrier-grade NAT)
    "240.0.0.1",  # reserved
    "224.0.0.251",  # multicast
    "ff02::1",
    "0.0.0.0",  # unspecified
    "255.255.255.255",
    "203.0.113.5",  # documentation
    "2001:db8::1",
    "not an address",
    "",
]


@pytest.mark.parametrize(("address", "country"), REGISTRY_ADDRESSES)
def test_bundled_database_knows_every_registry(address: str, country: str) -> None:
    assert BundledCountries().country(address) == country


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_addresses_that_are_not_public_have_no_country(address: str, tmp_path: Path) -> None:
    assert public_address(address) is None
    assert BundledCountries().country(address) is None
    # even where a database would have an answer for them
    france = {"country": {"iso_code": "FR"}}
    networks = ("0.0.0.0/1", "128.0.0.0/1", "2000::/3", "fc00::/7", "fe80::/10", "ff00::/8")
    path = write_country_mmdb(tmp_path / "all.mmdb", dict.fromkeys(networks, france))
    assert MmdbCountries(path).country(address) is None


def test_mmdb_file_replaces_the_bundled_data(tmp_path: Path) -> None:
    path = write_country_mmdb(
        tmp_path / "countries.mmdb",
        {
            "8.8.8.0/24": {"country": {"iso_code": "FR", "names": {"en": "France"}}},
            # no country: the registered one (as GeoLite2 has for some networks)
            "193.0.0.0/21": {"registered_country": {"iso_code": "de"}},
            "2001:4860::/32": {"country": {"iso_code": "CA"}},
            "1.0.16.0/20": {"country": {"iso_code": "not a code"}},
            "1.1.1.0/24": {"city": {"names": {"en": "Sydney"}}},
            "9.9.9.0/24": {"country": {"iso_code": "ZZ"}},  # "unknown"
        },
    )
    countries = open_country_database(path)
    assert isinstance(countries, MmdbCountries)
    assert countries.country("8.8.8.8") == "FR"
    assert countries.country("::ffff:8.8.8.8") == "FR"
    assert countries.country("193.0.6.139") == "DE"  # upper-cased
    assert countries.country("2001:4860:4860::8888") == "CA"
    assert countries.country("1.0.16.1") is None  # not two letters: ignored
    assert countries.country("1.1.1.1") is None  # no country in the record
    assert countries.country("9.9.9.9") is None  # ZZ: no country
    assert countries.country("8.8.4.4") is None  # not in the file
    assert "Test-Country" in countries.source


def test_ipv4_only_mmdb_answers_none_for_ipv6(tmp_path: Path) -> None:
    path = write_country_mmdb(
        tmp_path / "v4.mmdb", {"8.8.8.0/24": {"country": {"iso_code": "US"}}}, ip_version=4
    )
    countries = MmdbCountries(path)
    assert countries.country("8.8.8.8") == "US"
    assert countries.country("2001:4860:4860::8888") is None


def test_without_a_path_the_bundled_database_is_used() -> None:
    assert isinstance(open_country_database(None), BundledCountries)
    check_country_database(None)


@pytest.mark.parametrize("content", [None, b"", b"not a maxmind database at all" * 100])
def test_unreadable_mmdb_is_refused_naming_the_setting(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "countries.mmdb"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(GeoDatabaseError, match=r"ADTRACK_GEOIP_DB: cannot read .*countries\.mmdb"):
        open_country_database(path)
    with pytest.raises(GeoDatabaseError, match="ADTRACK_GEOIP_DB"):
        check_country_database(path)
