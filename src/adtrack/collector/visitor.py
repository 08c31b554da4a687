"""The event record's pieces that describe the visitor, cached per client address and per user
agent, so that a known address or agent costs one dict lookup on the hot path.

* Per client address (the full one, before truncation): the ``ip, country`` fields (the
  truncated address and the country looked up from the full one), and the ``null, country``
  fields kept when the visitor sent a privacy signal (``Sec-GPC: 1``, ``DNT: 1``).
* Per user agent (the raw header): the ``device_type, os, browser`` fields, and the
  ``device_type, null, null`` fields of a visitor who sent a privacy signal. (The
  ``user_agent`` field before them is the invalid-traffic check's, cached per agent too; this
  cache holds no copy of the agent's text.)

Each cache holds a bounded number of entries and starts afresh when full (a clear is cheaper
than evicting one entry per miss, and most entries of a busy cache are seen again within
moments).
"""

from __future__ import annotations

from sys import intern
from typing import Final

import orjson

from adtrack.collector.countries import BundledCountries, CountryDatabase
from adtrack.collector.device_types import DeviceInfo, describe_user_agent
from adtrack.collector.privacy import anonymise_ip

__all__ = [
    "DEFAULT_MAX_ADDRESSES",
    "DEFAULT_MAX_USER_AGENTS",
    "AddressFacts",
    "DeviceFacts",
    "VisitorFragments",
]

DEFAULT_MAX_ADDRESSES: Final = 32_768
DEFAULT_MAX_USER_AGENTS: Final = 50_000

# (fields with the address, fields without it (privacy signal), country)
AddressFacts = tuple[bytes, bytes, str | None]
# (fields with OS and browser, fields without them (privacy signal), what was found)
DeviceFacts = tuple[bytes, bytes, DeviceInfo]

_dumps = orjson.dumps


def _fields(*values: object) -> bytes:
    """``,v1,v2,...``: consecutive fields of the record, each preceded by its comma."""
    return b"," + _dumps(values)[1:-1]


_NO_DEVICE: Final[DeviceFacts] = (
    _fields(None, None, None),
    _fields(None, None, None),
    DeviceInfo(None, None, None),
)


class VisitorFragments:
    """The visitor's record pieces, with the two caches the collector reads them from."""

    __slots__ = ("addresses", "user_agents", "countries", "_max_addresses", "_max_user_agents")

    def __init__(
        self,
        countries: CountryDatabase | None = None,
        *,
        max_addresses: int = DEFAULT_MAX_ADDRESSES,
        max_user_agents: int = DEFAULT_MAX_USER_AGENTS,
    ) -> None:
        self.countries = countries if countries is not None else BundledCountries()
        # read directly by the hot path: .get(key), and the method below on a miss; never
        # replaced, only cleared in place (the hot path keeps their bound .get)
        self.addresses: dict[str | None, AddressFacts] = {}
        self.user_agents: dict[bytes | None, DeviceFacts] = {}
        self._max_addresses = max(1, max_addresses)
        self._max_user_agents = max(1, max_user_agents)
        # ua-parser loads its rules on first use (~0.15 s): now, not on a visitor's request
        describe_user_agent("Mozilla/5.0 (X11; Linux x86_64)")

    def address(self, client_ip: str | None) -> AddressFacts:
        """The pieces of a client address (computed once, then cached)."""
        facts = self.addresses.get(client_ip)
        if facts is None:
            if client_ip:
                ip, country = anonymise_ip(client_ip), self.countries.country(client_ip)
            else:
                ip = country = None
            facts = (_fields(ip, country), _fields(None, country), country)
            if len(self.addresses) >= self._max_addresses:
                self.addresses.clear()
            self.addresses[client_ip] = facts
        return facts

    def device(self, raw: bytes | None, user_agent: str | None) -> DeviceFacts:
        """The pieces of a user agent: ``raw`` is the header (the cache's key), ``user_agent``
        its text as stored (computed once, then cached)."""
        facts = self.user_agents.get(raw)
        if facts is None:
            if not user_agent:
                return _NO_DEVICE
            device_type, os, browser = describe_user_agent(user_agent)
            # (a few dozen names shared by every entry, not a copy each)
            info = DeviceInfo(
                device_type and intern(device_type),
                os and intern(os),
                browser and intern(browser),
            )
            facts = (_fields(*info), _fields(info.device_type, None, None), info)
            if len(self.user_agents) >= self._max_user_agents:
                self.user_agents.clear()
            self.user_agents[raw] = facts
        return facts
