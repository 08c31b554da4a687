"""The collector's control channel over real Unix-domain sockets: two collector cores answer on
their own sockets (on an event loop in a thread, as in a collector process) and the blocking
client merges them, as the console and the main port's /metrics do."""

from __future__ import annotations

import asyncio
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.collector.control import (
    CollectorChannels,
    ControlError,
    ControlServer,
    ask,
    decode_hits,
    encode_hits,
    start_control_server,
)
from adtrack.collector.core import TrackingCore
from adtrack.collector.hits import RecentHit, RecentHits
from adtrack.collector.tracker_cache import TrackerCache


@dataclass
class Collector:
    core: TrackingCore
    hits: RecentHits
    path: Path


@pytest.fixture
def collectors(engine: Engine, tmp_path: Path) -> Iterator[list[Collector]]:
    cache = TrackerCache(SqlTrackerCatalogue(engine))
    cache.load()
    directory = tmp_path / "control"
    directory.mkdir(mode=0o700)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    made: list[Collector] = []
    servers: list[ControlServer] = []
    for n in (1, 2):
        hits = RecentHits()
        core = TrackingCore(cache, hits=hits)
        path = directory / f"c{n}.sock"
        servers.append(
            asyncio.run_coroutine_threadsafe(start_control_server(core, path), loop).result(5)
        )
        made.append(Collector(core, hits, path))
    try:
        yield made
    finally:
        for server in servers:
            asyncio.run_coroutine_threadsafe(server.aclose(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def hit(ts: int, verdict: str = "valid") -> RecentHit:
    return RecentHit(ts, verdict, 1_250, False, None, f"agent {ts}", None, f"event-{ts}")


def test_hits_round_trip_through_json() -> None:
    hits = [
        hit(1),
        RecentHit(2, "rejected:inactive_tracker", 0, True, "https://x/", None, "r"),
        RecentHit(3, "valid", 0, False, None, None, None, "e3", None, "NL", "ctv"),
    ]
    assert decode_hits(encode_hits(hits)) == hits
    # a collector of the version before country and device type: both unknown
    assert decode_hits(b'[[4,"valid",0,false,null,"agent",null,"e4"]]') == [
        RecentHit(4, "valid", 0, False, None, "agent", None, "e4")
    ]


def test_live_hits_are_merged_newest_first_over_every_collector(
    collectors: list[Collector],
) -> None:
    first, second = collectors
    for ts in (1, 4, 5):
        first.hits.add(7, hit(ts))
    for ts in (2, 3, 6):
        second.hits.add(7, hit(ts))
    second.hits.add(8, hit(9))  # another tracker
    channels = CollectorChannels(lambda: [("1", first.path), ("2", second.path)])
    assert [h.ts for h in channels.recent(7, 4)] == [6, 5, 4, 3]
    assert channels.recent(7, 4)[0] == hit(6)
    assert [h.ts for h in channels.recent(8)] == [9]
    assert channels.recent(99) == []


def test_metrics_of_each_collector(collectors: list[Collector]) -> None:
    first, second = collectors
    first.core.metrics.requests["/imptr"] = 3
    channels = CollectorChannels(lambda: [("1", first.path), ("2", second.path)])
    texts = dict(channels.metrics())
    assert b'adtrack_collector_requests_total{endpoint="imptr"} 3.0' in texts["1"]
    assert b"adtrack_collector_requests_total{" not in texts["2"]


def test_sockets_are_private_and_unknown_commands_refused(collectors: list[Collector]) -> None:
    path = collectors[0].path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ControlError, match="unknown command"):
        ask(path, "hits seven 20")
    with pytest.raises(ControlError, match="unknown command"):
        ask(path, "shutdown")


def test_a_collector_that_does_not_answer_is_left_out(
    collectors: list[Collector], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    collectors[0].hits.add(7, hit(1))
    gone = tmp_path / "control" / "gone.sock"
    channels = CollectorChannels(lambda: [("1", collectors[0].path), ("3", gone)])
    assert [h.ts for h in channels.recent(7)] == [1]
    assert [name for name, _ in channels.metrics()] == ["1"]
    assert "collector 3 did not answer" in caplog.text
