"""What the collector keeps about a visitor.

* Client IPs are truncated before anything stores them: IPv4 keeps its first three octets
  (``203.0.113.77`` -> ``203.0.113.0``), IPv6 its first 48 bits (``2001:db8:1:2::5`` ->
  ``2001:db8:1::``); an IPv4-mapped IPv6 address is treated as IPv4.
* A request carrying ``Sec-GPC: 1`` or ``DNT: 1`` is still counted — counting is not personal —
  but, when the deployment honours these signals (the default), its event keeps no IP, user
  agent or referrer: only the invalid-traffic verdict computed from them in memory.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

__all__ = ["anonymise_ip", "opted_out", "truncate_ip"]


@lru_cache(maxsize=65_536)
def anonymise_ip(ip: str) -> str | None:
    """The anonymised form of a non-empty ``ip`` (None when it is not an IP address); cached."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(address) & 0xFFFFFF00))
    return str(ipaddress.IPv6Address(int(address) & ~((1 << 80) - 1)))


def truncate_ip(ip: str | None) -> str | None:
    """The anonymised form of ``ip`` (None when it is missing or not an IP address)."""
    if not ip:
        return None
    return anonymise_ip(ip)


def opted_out(sec_gpc: bytes | None, dnt: bytes | None) -> bool:
    """Whether the request carries a privacy signal (``Sec-GPC: 1`` or ``DNT: 1``)."""
    return (sec_gpc is not None and sec_gpc.strip() == b"1") or (
        dnt is not None and dnt.strip() == b"1"
    )
