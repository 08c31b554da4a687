"""The visitor's record pieces (``collector/visitor.py``): what they hold, and their caches."""

from __future__ import annotations

import orjson

from adtrack.collector.countries import BundledCountries
from adtrack.collector.device_types import DeviceInfo
from adtrack.collector.visitor import VisitorFragments

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


def _values(fragment: bytes) -> list[object]:
    """The record's fields in a fragment (``,v1,v2``)."""
    assert fragment.startswith(b",")
    return list(orjson.loads(b"[" + fragment[1:] + b"]"))


class _CountingCountries:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self._bundled = BundledCountries()

    def country(self, address: str) -> str | None:
        self.calls.append(address)
        return self._bundled.country(address)


def test_address_pieces_truncate_the_address_and_keep_the_full_addresses_country() -> None:
    visitor = VisitorFragments()
    # 8.8.8.0/24 is Google's; the truncated address alone would be looked up the same, but the
    # country comes from the full one
    with_ip, without_ip, country = visitor.address("8.8.8.8")
    assert _values(with_ip) == ["8.8.8.0", "US"]
    assert _values(without_ip) == [None, "US"]
    assert country == "US"
    assert _values(visitor.address("2001:4860:4860::8888")[0]) == ["2001:4860:4860::", "US"]
    assert _values(visitor.address("192.168.1.7")[0]) == ["192.168.1.0", None]
    assert _values(visitor.address(None)[0]) == [None, None]
    assert _values(visitor.address("garbage")[0]) == [None, None]


def test_a_known_address_is_not_looked_up_again() -> None:
    countries = _CountingCountries()
    visitor = VisitorFragments(countries, max_addresses=2)
    first = visitor.address("193.0.6.139")
    assert visitor.address("193.0.6.139") is first
    assert visitor.addresses["193.0.6.139"] is first  # what the hot path reads
    assert countries.calls == ["193.0.6.139"]
    visitor.address("8.8.8.8")
    visitor.address("1.0.16.1")  # the cache was full: it starts afresh
    assert len(visitor.addresses) == 1
    assert countries.calls == ["193.0.6.139", "8.8.8.8", "1.0.16.1"]


def test_device_pieces_with_and_without_privacy_signal() -> None:
    visitor = VisitorFragments()
    raw = IPHONE.encode()
    full, coarse, info = visitor.device(raw, IPHONE)
    assert _values(full) == ["mobile", "iOS", "Mobile Safari"]
    assert _values(coarse) == ["mobile", None, None]
    assert info == DeviceInfo("mobile", "iOS", "Mobile Safari")
    assert visitor.device(raw, IPHONE)[0] is full
    assert visitor.user_agents[raw][0] is full
    assert _values(visitor.device(None, None)[0]) == [None, None, None]
    assert _values(visitor.device(b"", None)[1]) == [None, None, None]


def test_user_agent_cache_is_bounded() -> None:
    visitor = VisitorFragments(max_user_agents=3)
    for n in range(10):
        agent = f"Mozilla/5.0 (X11; Linux x86_64; rv:{n}.0) Gecko/20100101 Firefox/{n}.0"
        assert visitor.device(agent.encode(), agent)[2].device_type == "desktop"
        assert len(visitor.user_agents) <= 3
