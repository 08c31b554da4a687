"""The collector's per-request CPU cost, without sockets: one ``CollectorProtocol`` fed the same
request bytes as ``bench/tracking.py`` sends (one request per read, as wrk's keep-alive
connections do), answered into a transport that drops the bytes, events appended to a writer
that keeps nothing.

What it measures is the HTTP layer and the tracking core (``data_received``, the httptools
callbacks, ``on_message_complete``, the batcher) and nothing the kernel or other processes do,
so it compares two revisions on a busy machine far better than req/s does. ``--against FILE``
loads another version of ``adtrack/collector/http_protocol.py`` (e.g. ``git show
REV:src/adtrack/collector/http_protocol.py > old.py``; named ``http_server.py`` in older
revisions) next to this one, on the same tracking core, and alternates the two run by run in this
one process, which takes most of a shared machine's noise out of the comparison.

Usage::

    .venv/bin/python bench/collector_hotpath.py [--requests 200000] [--repeat 7] [--against FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop

import adtrack
from _support import BROWSER_UA
from adtrack.adapters.sql import db
from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.collector.core import TrackingCore
from adtrack.collector.hits import RecentHits
from adtrack.collector.http_protocol import HttpCollector
from adtrack.collector.tracker_cache import TrackerCache
from tracking import make_catalogue


class NullWriter:
    """An event-log writer that keeps its promise without doing anything."""

    writes_synchronously = True

    def append_now(self, records: Sequence[bytes]) -> None:
        pass

    async def append(self, records: Sequence[bytes]) -> None:
        pass

    def readiness(self) -> str | None:
        return None

    async def close(self) -> None:
        pass


class NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def request_bytes(target: str) -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:8001\r\nUser-Agent: {BROWSER_UA}\r\n"
        "Referer: https://publisher.example/article/42\r\n\r\n"
    ).encode()


def load_other(path: str) -> Any:
    """Another version of ``adtrack.collector.http_protocol`` as a module of its own."""
    spec = importlib.util.spec_from_file_location("other_http_protocol", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def measure(http: Any, target: str, count: int) -> float:
    """Seconds of CPU per request over ``count`` requests (a fresh cachebuster each)."""
    proto = http.protocol_factory()
    proto.connection_made(NullTransport())  # type: ignore[arg-type]
    requests = [request_bytes(target.replace("CB", f"cb{n}")) for n in range(count)]
    received = proto.data_received
    started = time.process_time()
    for n, data in enumerate(requests):
        received(data)
        if n % 64 == 63:
            await asyncio.sleep(0)  # let the batcher run, as one loop iteration would
    await asyncio.sleep(0)
    return (time.process_time() - started) / count


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'adtrack.db'}"
        ids = make_catalogue(url)
        engine = db.make_engine(url)
        cache = TrackerCache(SqlTrackerCatalogue(engine))
        cache.load()
        core = TrackingCore(cache, hits=RecentHits())
        servers: dict[str, Any] = {"this": HttpCollector(core, NullWriter())}  # type: ignore[arg-type]
        if args.against:
            servers["other"] = load_other(args.against).HttpCollector(core, NullWriter())
        tail = "&cachebuster=CB&ancost=0.35&redir=https://example.com/a?b=c&d=e"
        targets = {
            "imptr": f"/imptr?id={ids['imp']}{tail}",
            "clktrb": f"/clktrb?id={ids['click']}{tail}",
            # the same click with a click token in its redirect target (docs/conversions.md)
            "token": f"/clktrb?id={ids['click']}{tail}&s=[SSP_DATA]",
            "healthz": "/healthz",
        }
        print(f"adtrack from {Path(adtrack.__file__).parent}; other: {args.against or '-'}")
        for name, target in targets.items():
            runs: dict[str, list[float]] = {key: [] for key in servers}
            for http in servers.values():
                await measure(http, target, 5000)  # warm up
            for _ in range(args.repeat):
                for key, http in servers.items():
                    runs[key].append(await measure(http, target, args.requests))
            for key, times in runs.items():
                print(
                    f"{name:8s} {key:5s} median {statistics.median(times) * 1e6:6.2f} us/request"
                    f"  (min {min(times) * 1e6:6.2f}, max {max(times) * 1e6:6.2f}, "
                    f"{args.repeat} runs of {args.requests})"
                )
        engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--against", help="another version of collector/http_protocol.py")
    uvloop.run(main(parser.parse_args()))
