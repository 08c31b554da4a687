"""Benchmarks of the event pipeline behind the collector (a benchmark, not a test).

1. append: the cost of ``LocalEventLogWriter.append`` per collector tick, for each fsync policy,
   next to a bare ``os.write`` of the same bytes (append = one os.write + framing).
2. aggregation: events/s rolled up — N events are written to a local log in a temp folder, then
   the aggregator drains it into SQLite and into PostgreSQL (raw events into the Parquet
   archive + hourly and daily rollups + log positions, the production path), in batches of
   ``--batch`` events (the default of ``ADTRACK_AGGREGATOR_BATCH_EVENTS``).
3. report: ``reporting.summary.summary`` latency over the rollups of a large number of events
   (rollups built with the aggregator's own fold and upserts; no raw events needed).

    python bench/aggregation.py                      # defaults: about two minutes
    python bench/aggregation.py --events 10000000    # report over 10 million events
    python bench/aggregation.py --aggregate-events 1000000 --only aggregation
    python bench/aggregation.py --only aggregation --span-seconds 10   # a busy site's backlog
    python bench/aggregation.py --only report --backends sqlite

PostgreSQL: a throw-away database on ADTRACK_BENCH_POSTGRES_URL
(default postgresql+psycopg://postgres@127.0.0.1:5432/), dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from _support import SAMPLE_EVENT
from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.adapters.eventlog.segment_format import encode_frame
from adtrack.adapters.raw_events.parquet_archive import ParquetRawEventArchive
from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.rollup import fold
from adtrack.aggregator.runner import Aggregator
from adtrack.bootstrap import build_report_engine
from adtrack.config import Settings
from adtrack.domain.events import Event
from adtrack.reporting.engine import ReportEngine
from adtrack.reporting.summary import summary
from adtrack.services.ports import RollupDelta

PG_SERVER = os.environ.get(
    "ADTRACK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/"
)
START = datetime(2026, 1, 1, tzinfo=UTC)
START_US = int(START.timestamp()) * 1_000_000
COUNTRIES = ("US", "DE", "GB", "FR", "IN", "BR", "JP", "")  # "" : no country (a private address)


# --- data ------------------------------------------------------------------------------------


def tracker_dims(tracker: int) -> tuple[int, ...]:
    """(imp_type, tracker, advertiser, line item, publisher, placement, payment rule)."""
    return (
        9 if tracker % 4 else 10,
        tracker,
        1 + tracker % 20,
        1 + tracker % 60,
        1 + tracker % 15,
        0 if tracker % 3 == 0 else 1 + tracker % 45,
        0 if tracker % 2 else 1 + tracker % 15,
    )


def make_event(i: int, ts: int, tracker: int, rng: random.Random) -> Event:
    imp_type, tid, adv, li, pub, plc, rule = tracker_dims(tracker)
    mobile = tracker % 3 == 0
    return SAMPLE_EVENT._replace(
        event_id=f"{secrets.token_hex(8)}{i:012x}",
        ts=ts,
        imp_type=imp_type,
        tracker_id=tid,
        advertiser_id=adv,
        line_item_id=li,
        publisher_id=pub,
        placement_id=plc or None,
        payment_rule_id=rule or None,
        media_cost_micros=1_250 if imp_type == 9 else 350_000,
        booked_revenue_micros=2_500 if imp_type == 9 else 800_000,
        cachebuster=str(rng.randrange(10**9)),
        country=COUNTRIES[tracker % len(COUNTRIES)],
        device_type="mobile" if mobile else "desktop",
        os="Android" if mobile else "Windows",
        browser="Chrome Mobile" if mobile else "Chrome",
        invalid=rng.random() < 0.03,
        redirect_url="https://shop.example.com/landing?utm_source=adtrack&utm_medium=display",
    )


# --- databases -------------------------------------------------------------------------------


@contextmanager
def database(backend: str, folder: Path) -> Iterator[Engine]:
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'bench-{secrets.token_hex(4)}.db'}"  # a new one each time
        upgrade(url)
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    server = make_url(PG_SERVER)
    name = f"adtrack_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = dict(host=server.host or "127.0.0.1", port=server.port or 5432,
                 user=server.username or "postgres", password=server.password, dbname="postgres",
                 autocommit=True)  # fmt: skip
    with psycopg.connect(**admin) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
    finally:
        with psycopg.connect(**admin) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- 1. append -------------------------------------------------------------------------------


def bench_append(seconds: float) -> None:
    print("\n== append: one call per collector tick (records of ~600 bytes) ==")
    rng = random.Random(1)
    record = make_event(0, START_US, 5, rng).to_bytes()
    print(f"record size {len(record)} bytes")
    print(f"{'policy':<9}{'records/tick':>13}{'us/append':>11}{'us/record':>11}{'records/s':>12}")
    for per_tick in (1, 16, 64, 256):
        records = [record] * per_tick
        with tempfile.TemporaryDirectory() as folder:
            frame = encode_frame(records)
            fd = os.open(Path(folder) / "raw", os.O_WRONLY | os.O_CREAT, 0o644)
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 4:
                os.write(fd, frame)
                n += 1
            os.close(fd)
            us = (time.perf_counter() - t0) / n * 1e6
            print(f"{'os.write':<9}{per_tick:>13}{us:>11.1f}{us / per_tick:>11.2f}{'':>12}")
        for policy in ("never", "interval", "always"):
            with tempfile.TemporaryDirectory() as folder:
                us = asyncio.run(_time_appends(Path(folder), policy, records, seconds / 4))
            print(
                f"{policy:<9}{per_tick:>13}{us:>11.1f}{us / per_tick:>11.2f}"
                f"{per_tick / us * 1e6:>12,.0f}"
            )


async def _time_appends(folder: Path, policy: str, records: list[bytes], seconds: float) -> float:
    writer = LocalEventLogWriter(folder, fsync=policy)
    await writer.append(records)  # the first append opens the segment
    n, elapsed = 0, 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        await writer.append(records)
        elapsed += time.perf_counter() - t0
        n += 1
        if n % 64 == 0:
            await asyncio.sleep(0)  # a real event loop lets the background fsync run
    await writer.close()
    return elapsed / n * 1e6


# --- 2. aggregation --------------------------------------------------------------------------


def write_log(folder: Path, events: int, trackers: int, span_seconds: float = 86_400) -> float:
    """N events spread evenly over ``span_seconds`` (one day: a batch spans hours), written
    in collector-sized appends; returns seconds taken."""
    rng = random.Random(2)
    step = int(span_seconds * 1_000_000) // max(events, 1)

    async def run() -> None:
        writer = LocalEventLogWriter(folder, fsync="never")
        batch: list[bytes] = []
        for i in range(events):
            batch.append(
                make_event(i, START_US + i * step, rng.randrange(trackers), rng).to_bytes()
            )
            if len(batch) == 64:
                await writer.append(batch)
                batch = []
        if batch:
            await writer.append(batch)
        await writer.close()

    t0 = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - t0


def bench_aggregation(
    backends: list[str], events: int, trackers: int, batch: int, rounds: int, span: float
) -> None:
    print(
        f"\n== aggregation: {events:,} events, {trackers} trackers, over {span:,.0f} s; "
        f"batches of {batch:,}; median of {rounds} rounds =="
    )
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp) / "eventlog"
        took = write_log(log_dir, events, trackers, span)
        size = sum(p.stat().st_size for p in log_dir.glob("*.seg"))
        print(f"log written: {size / 2**20:.0f} MiB in {took:.1f} s")
        for backend in backends:
            walls: list[float] = []
            cpus: list[float] = []
            for round_ in range(rounds):
                with database(backend, Path(tmp)) as engine:
                    # the production path: rollups + log positions in SQL, raw events archived
                    archive = ParquetRawEventArchive(Path(tmp) / f"raw-{backend}-{round_}")
                    aggregator = Aggregator(
                        LocalEventLogReader(log_dir, consumer=backend),
                        SqlRollupSink(engine),
                        archive=archive,
                    )

                    async def drain(agg: Aggregator = aggregator) -> int:
                        total = 0
                        while handled := await agg.run_once(batch):
                            total += handled
                        return total

                    t0, cpu0 = time.perf_counter(), time.process_time()
                    handled = asyncio.run(drain())
                    walls.append(time.perf_counter() - t0)
                    cpus.append(time.process_time() - cpu0)
                    assert handled == events, f"drained {handled} of {events}"
                    with engine.connect() as conn:
                        stored = conn.execute(
                            select(func.sum(t.rollup_hourly.c.imps + t.rollup_hourly.c.clicks
                                            + t.rollup_hourly.c.invalid_imps
                                            + t.rollup_hourly.c.invalid_clicks))
                        ).scalar()  # fmt: skip
                        files = conn.execute(
                            select(func.count()).select_from(t.raw_event_files)
                        ).scalar()
                    assert stored == events, f"rollups hold {stored} of {events}"
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            # CPU seconds of this process (for SQLite, the database work too; PostgreSQL's
            # server works in its own processes): on a busy machine, events per CPU second
            # tells what an idle core would do.
            print(
                f"{backend:<11} {events:,} events in {wall:.2f} s = {events / wall:,.0f} events/s;"
                f" {events / cpu:,.0f} events per CPU second of the aggregator "
                f"({cpu / events * 1e6:.1f} µs/event; {files} archive files; target 200,000)"
            )


# --- 3. report latency -----------------------------------------------------------------------


def bench_report(backends: list[str], events: int, trackers: int, days: int) -> None:
    print(f"\n== report summary over {events:,} events ({trackers} trackers, {days} days) ==")
    t0 = time.perf_counter()
    delta = RollupDelta()
    rng = random.Random(3)
    span = days * 86_400_000_000
    chunk: list[Event] = []
    for i in range(events):
        chunk.append(make_event(i, START_US + rng.randrange(span), rng.randrange(trackers), rng))
        if len(chunk) == 100_000:
            fold(chunk, into=delta)
            chunk = []
    fold(chunk, into=delta)
    print(f"folded in {time.perf_counter() - t0:.1f} s: {len(delta.rows):,} hourly rollup rows")
    end = START + timedelta(days=days)
    queries: list[tuple[str, Callable[[ReportEngine], Any]]] = [
        ("totals, whole range", lambda e: summary(e, START, end)),
        ("by day, whole range", lambda e: summary(e, START, end, ["day"])),
        ("by tracker, whole range", lambda e: summary(e, START, end, ["tracker"])),
        ("by advertiser+day, whole range", lambda e: summary(e, START, end, ["advertiser", "day"])),
        (
            "by hour+imp_type, last 7 days",
            lambda e: summary(e, end - timedelta(days=7), end, ["hour", "imp_type"]),
        ),
        (
            "one tracker by hour, last day",
            lambda e: summary(e, end - timedelta(days=1), end, ["hour"], {"tracker": [5]}),
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            with database(backend, Path(tmp)) as engine:
                t0 = time.perf_counter()
                sink = SqlRollupSink(engine)
                items = list(delta.rows.items())
                for i in range(0, len(items), 20_000):
                    sink.add_rollups(RollupDelta(rows=dict(items[i : i + 20_000])))
                print(f"{backend}: rollups loaded in {time.perf_counter() - t0:.1f} s")
                reports = build_report_engine(engine)
                for label, run in queries:
                    run(reports)  # warm the cache
                    times = []
                    for _ in range(5):
                        t0 = time.perf_counter()
                        result = run(reports)
                        times.append(time.perf_counter() - t0)
                    print(
                        f"  {label:<34} median {statistics.median(times) * 1000:8.1f} ms"
                        f"   ({len(result['rows']):,} rows)"
                    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=2_000_000, help="events behind the report (rollup table)"
    )
    parser.add_argument(
        "--aggregate-events",
        type=int,
        default=200_000,
        help="events written to the log and aggregated (at most --events)",
    )
    parser.add_argument("--trackers", type=int, default=200)
    parser.add_argument(
        "--span-seconds",
        type=float,
        default=86_400,
        help="the aggregated events' time span (one day: each batch spans hours, so its raw "
        "events go to several hourly files and its rollups to several hours; a backlog of a "
        "busy site spans seconds)",
    )
    parser.add_argument(
        "--batch", type=int, default=Settings.aggregator_batch_events, help="events per batch"
    )
    parser.add_argument("--rounds", type=int, default=3, help="aggregation rounds (median)")
    parser.add_argument("--days", type=int, default=30, help="days the report events span")
    parser.add_argument("--append-seconds", type=float, default=4.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--only", choices=["append", "aggregation", "report"])
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    if args.only in (None, "append"):
        bench_append(args.append_seconds)
    if args.only in (None, "aggregation"):
        bench_aggregation(
            backends,
            min(args.aggregate_events, args.events),
            args.trackers,
            args.batch,
            args.rounds,
            args.span_seconds,
        )
    if args.only in (None, "report"):
        bench_report(backends, args.events, args.trackers, args.days)


if __name__ == "__main__":
    main()
