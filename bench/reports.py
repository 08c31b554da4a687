"""Reporting benchmark: report latency over 10 million events and the click feed's streaming rate.

1. Builds a catalogue (50 advertisers, 200 line items, 100 publishers, 300 placements, 1,000
   trackers: 700 impression, 300 click) and rollup rows for ``--events`` events over ``--days``
   days, generated the way the aggregator would write them: for every tracker and UTC hour a
   count drawn around the tracker's share (Zipf-like popularity) times a day/night curve; 2 %
   invalid; CPM costs and revenues. Only (tracker, hour) cells with events get a row. Hourly
   rows go to ``rollup_hourly`` and their UTC-day sums to ``rollup_daily``.
2. Times ``ReportEngine.run`` (the same call the API makes) for a 90-day report grouped by line item
   and day -- in UTC (the default) and in America/New_York -- plus a cumulative report by
   tracker and an hourly report over one day, ``--repeat`` times each (median and best), and
   for the 90-day reports the JSON answer built from the result (``json_*``).
3. Archives ``--feed-clicks`` click events of one UTC day in the raw-event archive (Parquet
   files staged in batches of 50,000 events and listed in the manifest, as the aggregator does;
   the staging rate is printed) and times streaming the whole day through ``stream_feed`` (CSV
   and JSON lines), in rows/s.

Usage::

    .venv/bin/python bench/reports.py [--db sqlite|postgresql] [--events 10000000]
        [--days 90] [--feed-clicks 1000000] [--repeat 5] [--json results.json]

SQLite runs on a temporary file; PostgreSQL on a throw-away database on 127.0.0.1:5432
(dropped afterwards); the archive in a temporary directory (next to ``--keep``'s file, named
after it, when kept). Targets: the 90-day line-item x day report < 300 ms, the CSV feed >= 1M
rows/s.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text

from _support import (
    PG_SERVER,
    SAMPLE_EVENT,
    create_database,
    database_exists,
    drop_database,
    new_database_name,
)
from adtrack.adapters.raw_events.duckdb_reader import DuckDBRawEventReader
from adtrack.adapters.raw_events.manifest import register_files
from adtrack.adapters.raw_events.parquet_archive import ParquetRawEventArchive
from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.bootstrap import build_report_engine
from adtrack.domain.events import Event
from adtrack.domain.rollup_counters import Counters
from adtrack.reporting.feed_stream import stream_feed
from adtrack.reporting.feeds import parse_feed_request
from adtrack.reporting.formats import to_json
from adtrack.reporting.request import parse_report_request
from adtrack.services.raw_event_columns import events_to_table

N_ADVERTISERS, N_LINE_ITEMS, N_PUBLISHERS, N_PLACEMENTS = 50, 200, 100, 300
N_IMPRESSION_TRACKERS, N_CLICK_TRACKERS = 700, 300
CLICK_SHARE = 0.01  # clicks per impression, network-wide
INVALID_SHARE = 0.02
HOUR = timedelta(hours=1)


@contextmanager
def database(kind: str, keep: Path | None) -> Iterator[str]:
    if kind == "sqlite" and keep is not None:
        yield f"sqlite:///{keep.resolve()}"
        return
    if kind == "postgresql" and keep is not None:
        yield f"{PG_SERVER}{keep.name}"
        return
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    name = new_database_name()
    url = create_database(name)
    try:
        yield url
    finally:
        drop_database(name)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def build_catalogue(engine: Engine, rng: random.Random) -> list[dict[str, Any]]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    audit = {"state": "active", "created_at": now, "last_modified": now}
    trackers: list[dict[str, Any]] = []
    with engine.begin() as conn:
        conn.execute(
            t.advertisers.insert(),
            [{"id": i, "name": f"Advertiser {i}", **audit} for i in range(1, N_ADVERTISERS + 1)],
        )
        conn.execute(
            t.line_items.insert(),
            [
                {
                    "id": i,
                    "advertiser_id": (i - 1) % N_ADVERTISERS + 1,
                    "name": f"Line item {i}",
                    "revenue_type": "cpm",
                    "revenue_value_micros": rng.randrange(500_000, 5_000_000),
                    **audit,
                }
                for i in range(1, N_LINE_ITEMS + 1)
            ],
        )
        conn.execute(
            t.publishers.insert(),
            [{"id": i, "name": f"Publisher {i}", **audit} for i in range(1, N_PUBLISHERS + 1)],
        )
        conn.execute(
            t.placements.insert(),
            [
                {
                    "id": i,
                    "publisher_id": (i - 1) % N_PUBLISHERS + 1,
                    "name": f"Placement {i}",
                    **audit,
                }
                for i in range(1, N_PLACEMENTS + 1)
            ],
        )
        conn.execute(
            t.payment_rules.insert(),
            [
                {
                    "id": i,
                    "publisher_id": i,
                    "name": f"Base rule {i}",
                    "is_base": True,
                    "pricing_type": "cpm",
                    "cost_cpm_micros": rng.randrange(200_000, 2_000_000),
                    **audit,
                }
                for i in range(1, N_PUBLISHERS + 1)
            ],
        )
        for i in range(1, N_IMPRESSION_TRACKERS + N_CLICK_TRACKERS + 1):
            line_item = rng.randrange(1, N_LINE_ITEMS + 1)
            placement = rng.randrange(1, N_PLACEMENTS + 1)
            publisher = (placement - 1) % N_PUBLISHERS + 1
            trackers.append(
                {
                    "id": i,
                    "tracker_type": "impression" if i <= N_IMPRESSION_TRACKERS else "click",
                    "name": f"Tracker {i}",
                    "advertiser_id": (line_item - 1) % N_ADVERTISERS + 1,
                    "line_item_id": line_item,
                    "publisher_id": publisher,
                    "placement_id": placement if rng.random() < 0.8 else None,
                    "payment_rule_id": publisher,
                    **audit,
                }
            )
        conn.execute(t.trackers.insert(), trackers)
    return trackers


def poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:  # normal approximation, fine for a benchmark's volumes
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def rollup_cells(
    trackers: list[dict[str, Any]], events: int, days: int, first: datetime, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """(hour, imp_type, tracker, adv, li, pub, placement, rule, *Counters) for every (tracker,
    hour) with events."""
    imp_trackers = [tr for tr in trackers if tr["tracker_type"] == "impression"]
    clk_trackers = [tr for tr in trackers if tr["tracker_type"] == "click"]
    # Zipf-like popularity within each kind; clicks are ~1 % of impressions.
    imp_total = events / (1 + CLICK_SHARE)
    clk_total = events - imp_total

    def shares(group: list[dict[str, Any]], total: float) -> list[float]:
        weights = [1 / (rank + 1) ** 0.8 for rank in range(len(group))]
        rng.shuffle(weights)
        scale = total / sum(weights)
        return [w * scale for w in weights]

    imp_shares, clk_shares = shares(imp_trackers, imp_total), shares(clk_trackers, clk_total)
    hours = days * 24
    # A day/night curve (UTC) normalised to mean 1.
    curve = [1 + 0.6 * math.sin((h - 9) / 24 * 2 * math.pi) for h in range(24)]
    for h in range(hours):
        hour = first + h * HOUR
        weight = curve[h % 24]
        for group, group_shares, imp_type in (
            (imp_trackers, imp_shares, 9),
            (clk_trackers, clk_shares, 10),
        ):
            for tr, share in zip(group, group_shares, strict=True):
                n = poisson(rng, share / hours * weight)
                if n == 0:
                    continue
                invalid = sum(1 for _ in range(min(n, 50)) if rng.random() < INVALID_SHARE)
                if n > 50:
                    invalid = round(n * INVALID_SHARE)
                valid = n - invalid
                cost = valid * (1_000 if imp_type == 9 else 50_000)
                revenue = valid * (2_500 if imp_type == 9 else 120_000)
                yield (
                    hour,
                    imp_type,
                    tr["id"],
                    tr["advertiser_id"],
                    tr["line_item_id"],
                    tr["publisher_id"],
                    tr["placement_id"] or 0,
                    tr["payment_rule_id"] or 0,
                    *Counters(
                        imps=valid if imp_type == 9 else 0,
                        clicks=valid if imp_type == 10 else 0,
                        invalid_imps=invalid if imp_type == 9 else 0,
                        invalid_clicks=invalid if imp_type == 10 else 0,
                        media_cost_micros=cost,
                        booked_revenue_micros=revenue,
                        # most impressions measured for viewability, half of them viewable
                        view_measured_imps=valid * 4 // 5 if imp_type == 9 else 0,
                        viewable_imps=valid // 2 if imp_type == 9 else 0,
                    ),
                )


def sqlite_time(value: datetime) -> str:
    # The text form SQLAlchemy's SQLite DATETIME binds and compares.
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class BulkLoader:
    """Fast inserts: sqlite3 executemany, or PostgreSQL COPY."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"

    def load(self, table: t.Table, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            if self.pg:
                with cur.copy(  # type: ignore[attr-defined]
                    f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                converted = [
                    tuple(sqlite_time(v) if isinstance(v, datetime) else v for v in row)
                    for row in rows
                ]
                cur.executemany(
                    f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", converted
                )
            raw.commit()
        finally:
            raw.close()


# The rollup tables' columns after the time: the key ids, then the sums (``rollup_cells`` order).
ROLLUP_COLUMNS = [c.name for c in t.rollup_hourly.columns][1:]


def load_rollups(
    loader: BulkLoader, trackers: list[dict[str, Any]], events: int, days: int, first: datetime
) -> dict[str, int]:
    rng = random.Random(7)
    hourly_batch: list[tuple[Any, ...]] = []
    daily: dict[tuple[Any, ...], list[int]] = {}
    hourly_rows = total_events = 0
    for cell in rollup_cells(trackers, events, days, first, rng):
        hourly_batch.append(cell)
        hourly_rows += 1
        total_events += sum(cell[8:12])
        day = cell[0].replace(hour=0)
        key = (day, *cell[1:8])
        slot = daily.get(key)
        if slot is None:
            daily[key] = list(cell[8:])
        else:
            for i, v in enumerate(cell[8:]):
                slot[i] += v
        if len(hourly_batch) >= 200_000:
            loader.load(t.rollup_hourly, ["hour", *ROLLUP_COLUMNS], hourly_batch)
            hourly_batch = []
    loader.load(t.rollup_hourly, ["hour", *ROLLUP_COLUMNS], hourly_batch)
    daily_rows = [(*k, *v) for k, v in daily.items()]
    loader.load(t.rollup_daily, ["day", *ROLLUP_COLUMNS], daily_rows)
    return {"events": total_events, "hourly_rows": hourly_rows, "daily_rows": len(daily_rows)}


STAGE_BATCH = 50_000  # events per staged batch (a busy aggregator's batch)


def load_click_day(
    engine: Engine,
    archive: ParquetRawEventArchive,
    trackers: list[dict[str, Any]],
    clicks: int,
    day: datetime,
) -> float:
    """Archive ``clicks`` clicks spread over ``day``; returns the staging cost in
    microseconds per event (writing the files, not generating the events)."""
    rng = random.Random(11)
    click_trackers = [tr for tr in trackers if tr["tracker_type"] == "click"]
    step = 86_400_000_000 / clicks
    # Clicks come from article pages of the publishers' sites (20,000 distinct pages, a few
    # very popular) and from a few hundred browser versions.
    pages = [
        f"https://news{i % 300}.example.com/{2026 - i % 5}/article-{i}.html?utm_source=feed"
        for i in range(20_000)
    ]
    rng.shuffle(pages)
    agents = [
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{100 + i % 30}.0.{i}.0 Safari/537.36"
        for i in range(400)
    ]
    batch: list[Event] = []
    day_micros = int(day.timestamp()) * 1_000_000
    staging = 0.0

    def stage(events: list[Event]) -> float:
        table = events_to_table(events)  # the aggregator hands the archive a table like this
        started = time.perf_counter()
        files = archive.stage(table, f"bench-{events[0].event_id}")
        spent = time.perf_counter() - started
        with engine.begin() as conn:
            register_files(conn, files)
        return spent

    for i in range(clicks):
        tr = click_trackers[rng.randrange(len(click_trackers))]
        ts = day_micros + int(i * step)
        ancost = rng.random() < 0.3
        invalid = rng.random() < INVALID_SHARE
        event = SAMPLE_EVENT._replace(
            event_id=f"bench-{i:09d}",
            ts=ts,
            imp_type=10,
            tracker_id=tr["id"],
            advertiser_id=tr["advertiser_id"],
            line_item_id=tr["line_item_id"],
            publisher_id=tr["publisher_id"],
            placement_id=tr["placement_id"],
            payment_rule_id=tr["payment_rule_id"],
            media_cost_micros=rng.randrange(0, 200_000) if ancost else 50_000,
            booked_revenue_micros=120_000,
            revenue_type="cpc",
            ancost_used=ancost,
            cachebuster=f"{rng.getrandbits(40):x}",
            user_agent=agents[min(int(rng.paretovariate(1.2)) - 1, len(agents) - 1)],
            referrer=pages[min(int(rng.paretovariate(1.0)) - 1, len(pages) - 1)],
            invalid=invalid,
            invalid_reason="bot" if invalid else None,
            redirect_url="https://shop.example.com/landing",
        )
        batch.append(event)
        if len(batch) >= STAGE_BATCH:
            staging += stage(batch)
            batch = []
    if batch:
        staging += stage(batch)
    return staging / max(clicks, 1) * 1e6


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], list[float], Any]:
    """Wall-clock and CPU milliseconds of ``repeat`` calls (CPU time shows the cost on a busy
    machine, where wall-clock time also counts waiting for a core)."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return times, cpu, result


def stream_timed(chunks: Iterator[bytes]) -> tuple[float, float, int, int]:
    """Wall and CPU seconds spent producing ``chunks`` (what a server streaming the feed
    waits for), and the bytes and lines they held. The lines are counted outside the timing:
    counting them costs a fifth of producing them, and a server does not count."""
    wall = cpu = 0.0
    size = lines = 0
    while True:
        started, cpu_started = time.perf_counter(), time.process_time()
        chunk = next(chunks, None)
        wall += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        if chunk is None:
            return wall, cpu, size, lines
        size += len(chunk)
        lines += chunk.count(b"\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--feed-clicks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--feed-repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="use (and keep) this SQLite file, or for PostgreSQL the database named like its "
        "last part; data is loaded only if it is new",
    )
    args = parser.parse_args()

    first = datetime(2026, 1, 1, tzinfo=UTC)
    end = first + timedelta(days=args.days)
    results: dict[str, Any] = {"db": args.db, "events_target": args.events, "days": args.days}
    feed_day = end - timedelta(days=1)
    reuse = args.keep is not None and (
        args.keep.exists() if args.db == "sqlite" else database_exists(args.keep.name)
    )
    if args.db == "postgresql" and args.keep is not None and not reuse:
        create_database(args.keep.name)
    with database(args.db, args.keep) as url, tempfile.TemporaryDirectory() as scratch:
        upgrade(url)
        engine = make_engine(url)
        raw_root = (
            args.keep.with_name(f"{args.keep.name}.raw-events")
            if args.keep is not None
            else Path(scratch) / "raw-events"
        )
        archive = ParquetRawEventArchive(raw_root)
        loader = BulkLoader(engine)
        rng = random.Random(3)
        started = time.perf_counter()
        if reuse:
            with engine.connect() as conn:
                # int(): PostgreSQL's sum() of bigints is a numeric (a Decimal), which the JSON
                # results file cannot hold
                volume = {
                    "events": int(
                        conn.execute(
                            select(
                                func.sum(
                                    t.rollup_daily.c.imps
                                    + t.rollup_daily.c.clicks
                                    + t.rollup_daily.c.invalid_imps
                                    + t.rollup_daily.c.invalid_clicks
                                )
                            )
                        ).scalar()
                        or 0
                    ),
                    "hourly_rows": conn.execute(
                        select(func.count()).select_from(t.rollup_hourly)
                    ).scalar(),
                    "daily_rows": conn.execute(
                        select(func.count()).select_from(t.rollup_daily)
                    ).scalar(),
                }
        else:
            trackers = build_catalogue(engine, rng)
            volume = load_rollups(loader, trackers, args.events, args.days, first)
            stage_us = load_click_day(engine, archive, trackers, args.feed_clicks, feed_day)
            results["stage_us_per_event"] = round(stage_us, 2)
            print(f"  archive staging: {stage_us:.2f} us/event", flush=True)
            # The day is over: compacted into one sorted file per hour, as the aggregator's
            # maintenance does for closed hours.
            started_compaction = time.perf_counter()
            archive.compact(engine, feed_day + timedelta(days=1))
            results["compact_seconds"] = round(time.perf_counter() - started_compaction, 1)
            print(f"  compaction of the day: {results['compact_seconds']} s", flush=True)
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))  # planner statistics, as a live database has
        results["load_seconds"] = round(time.perf_counter() - started, 1)
        results.update(volume)
        print(
            f"[{args.db}] loaded {volume['events']:,} events as {volume['hourly_rows']:,} hourly "
            f"and {volume['daily_rows']:,} daily rollup rows, {args.feed_clicks:,} raw clicks "
            f"({results['load_seconds']} s)",
            flush=True,
        )

        day_start, day_end = first.date().isoformat(), end.date().isoformat()
        cases = {
            "90d_line_item_by_day_utc": {"group_by": "line_item"},
            "90d_line_item_by_day_new_york": {
                "group_by": "line_item",
                "timezone": "America/New_York",
            },
            "90d_cumulative_by_tracker": {"group_by": "tracker", "interval": "cumulative"},
            "90d_month_by_advertiser_imp_type": {
                "group_by": "advertiser,imp_type",
                "interval": "month",
            },
        }
        reports: dict[str, Any] = {}
        report_engine = build_report_engine(engine)
        # As the API process does once it has started (web/app.py): what is loaded by now
        # stays, out of the cycle collector's way.
        gc.collect()
        gc.freeze()
        for name, extra in cases.items():
            params = {"start": day_start, "end": day_end, "interval": "day", **extra}
            request = parse_report_request(params)
            report_engine.run(request)  # warm the cache like a running server would be
            times, cpu, report = timed(
                lambda request=request: report_engine.run(request), args.repeat
            )
            # What the API adds for a JSON answer (web/downloads.py).
            json_times, json_cpu, _ = timed(lambda report=report: to_json(report), args.repeat)
            reports[name] = {
                "median_ms": round(statistics.median(times), 1),
                "best_ms": round(min(times), 1),
                "best_cpu_ms": round(min(cpu), 1),
                "json_median_ms": round(statistics.median(json_times), 1),
                "json_best_cpu_ms": round(min(json_cpu), 1),
                "rows": len(report.rows),
                "total_events": report.totals.imps
                + report.totals.clicks
                + report.totals.invalid_imps
                + report.totals.invalid_clicks,
            }
            print(f"  report {name}: {reports[name]}", flush=True)
        one_day = parse_report_request(
            {
                "start": feed_day.date().isoformat(),
                "end": end.date().isoformat(),
                "interval": "hour",
                "group_by": "line_item",
            }
        )
        times, cpu, report = timed(lambda: report_engine.run(one_day), args.repeat)
        reports["1d_line_item_by_hour_utc"] = {
            "median_ms": round(statistics.median(times), 1),
            "best_ms": round(min(times), 1),
            "best_cpu_ms": round(min(cpu), 1),
            "rows": len(report.rows),
        }
        print(f"  report 1d_line_item_by_hour_utc: {reports['1d_line_item_by_hour_utc']}")
        results["reports"] = reports
        assert reports["90d_line_item_by_day_utc"]["total_events"] == volume["events"]

        feed_request = parse_feed_request(
            "click",
            feed_day.isoformat(),
            end.isoformat(),
            retention_days=100_000,
        )
        feeds: dict[str, Any] = {}
        for fmt in ("csv", "jsonl"):
            walls, cpus = [], []
            for _ in range(args.feed_repeat):
                wall_seconds, cpu_seconds, size, lines = stream_timed(
                    stream_feed(DuckDBRawEventReader(raw_root, engine), feed_request, fmt)
                )
                walls.append(wall_seconds)
                cpus.append(cpu_seconds)
                rows = lines - (1 if fmt == "csv" else 0)
                assert rows == args.feed_clicks, (rows, args.feed_clicks)
            feeds[fmt] = {
                "rows": rows,
                "median_seconds": round(statistics.median(walls), 2),
                "rows_per_second_median": round(rows / statistics.median(walls)),
                "rows_per_second_best": round(rows / min(walls)),
                "rows_per_cpu_second_best": round(rows / min(cpus)),
                "megabytes": round(size / 1e6, 1),
            }
            print(f"  feed {fmt}: {feeds[fmt]}", flush=True)
        results["feeds"] = feeds
        with engine.connect() as conn:
            results["raw_events"] = conn.execute(
                select(func.sum(t.raw_event_files.c.rows))
            ).scalar()
        engine.dispose()

    target_ms = results["reports"]["90d_line_item_by_day_utc"]["median_ms"]
    print(
        f"90-day report by line item and day: {target_ms} ms (target < 300 ms); "
        f"click feed: {results['feeds']['csv']['rows_per_second_median']:,} rows/s CSV "
        "(target >= 1,000,000)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
