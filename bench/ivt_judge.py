"""The invalid-traffic judge's cost per request on the cached path (a known user agent and a
known client address), and per new user agent and new address.

Usage::

    .venv/bin/python bench/ivt_judge.py [--number 1000000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import gzip
import timeit
from collections.abc import Callable
from pathlib import Path

from _support import BROWSER_UA
from adtrack.collector.datacentre import DatacentreAddresses, DatacentreRanges, datacentre_ranges
from adtrack.collector.invalid_traffic import BotDetector

BROWSER = BROWSER_UA.encode()
CORPUS = Path(__file__).resolve().parents[1] / "tests/data/ivt/matomo-browsers.txt.gz"


def _best_ns(statement: Callable[[], object], number: int, repeat: int) -> float:
    times = timeit.repeat(statement, number=number, repeat=repeat)
    return min(times) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    bots = BotDetector()
    addresses = DatacentreAddresses(datacentre_ranges())
    bots.classify(BROWSER)
    addresses.is_datacentre("81.2.69.160")
    classify, is_datacentre = bots.classify, addresses.is_datacentre
    n, r = args.number, args.repeat
    agent = _best_ns(lambda: classify(BROWSER), n, r)
    address = _best_ns(lambda: is_datacentre("81.2.69.160"), n, r)
    print(f"cached user agent verdict:  {agent:7.0f} ns")
    print(f"cached address verdict:     {address:7.0f} ns")
    print(f"judge step, cached path:    {agent + address:7.0f} ns per request")

    agents = gzip.decompress(CORPUS.read_bytes()).decode().splitlines()[:2000]
    fresh = BotDetector()
    started = timeit.default_timer()
    for text in agents:
        fresh.classify(text.encode())
    per_agent = (timeit.default_timer() - started) / len(agents) * 1e3
    print(f"new user agent (browser):   {per_agent:7.2f} ms")
    ranges = datacentre_ranges()
    per_address = _best_ns(lambda: ranges.contains("81.2.69.160"), 100_000, r)
    print(f"new address (IPv4):         {per_address:7.0f} ns")
    per_address = _best_ns(lambda: ranges.contains("2a02:c7f:1234::1"), 100_000, r)
    print(f"new address (IPv6):         {per_address:7.0f} ns")
    started = timeit.default_timer()
    DatacentreRanges.from_bundled_database()  # merged afresh, as without a cache directory
    print(f"loading the ranges:         {timeit.default_timer() - started:7.2f} s (per process)")


if __name__ == "__main__":
    main()
