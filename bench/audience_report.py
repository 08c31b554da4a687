"""Audience report benchmark: 90-day reports by country and by device over the audience rollups
of 100 million events.

1. Builds a catalogue (50 advertisers, 200 line items) and the audience rollups the aggregator
   would have written for ``--events`` events over ``--days`` days, at both levels (network and
   line item, ``adapters/sql/tables.py``):
   - line items get a Zipf-like share of the traffic (s = 1: the biggest about 17 %, the
     smallest under 0.1 %), 1 click per 100 impressions, 2 % invalid;
   - countries: 100 codes with Zipf-like weights (s = 1.4), each line item's own home market
     first (one of US, GB, DE, FR, BR, IN, JP, ...); device (type, OS, browser): 120
     combinations of 5 types, 14 OS families and 24 browser families, Zipf-like (s = 1.2);
   - a (line item, day) of ``n`` events holds as many distinct values as ``n`` draws from
     those weights are expected to hit (``sum(1 - (1 - p)^n)``): the likely ones and a few of
     the tail. So the busiest line items see every country and the small ones a few dozen,
     which is what makes the row counts (printed) realistic rather than a full cross product.
   Daily rows are written for every day; hourly rows for the first and last day (the edge hours
   a report in another time zone reads; the others are never read by these reports); monthly
   line-item rows (UTC months) are the daily ones summed per month, as the aggregator writes
   them.
2. Times ``ReportEngine.run`` (what the API calls) ``--repeat`` times each, median and best:
   90 days by country (cumulative and by day), by device type, by device type x OS x browser,
   filtered (``country=US,FR``; ``device_type=mobile`` by browser), one line item by country,
   every line item by country, device type, and OS x browser (the biggest reads: the line-item
   tables, whole months from the monthly ones), and by country in America/New_York.
   ``--line-items-only`` times the every-line-item reports only.

Usage::

    .venv/bin/python bench/audience_report.py [--db sqlite|postgresql] [--events 100000000]
        [--days 90] [--repeat 7] [--line-items-only] [--json results.json]

SQLite runs on a temporary file; PostgreSQL on a throw-away database on 127.0.0.1:5432 (dropped
afterwards). Target: the 90-day reports < 300 ms.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table

from _support import create_database, drop_database, new_database_name
from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.bootstrap import build_report_engine
from adtrack.reporting.request import parse_report_request

N_ADVERTISERS, N_LINE_ITEMS = 50, 200
CLICK_SHARE, INVALID_SHARE = 0.01, 0.02
HOMES = ("US", "GB", "DE", "FR", "BR", "IN", "JP", "ES", "IT", "CA")
DEVICE_TYPES = ("desktop", "mobile", "tablet", "ctv", "other")
OS_FAMILIES = (
    "Windows", "Mac OS X", "iOS", "Android", "Linux", "Chrome OS", "Ubuntu", "Fedora",
    "Tizen", "webOS", "Roku", "tvOS", "Fire OS", "Other",
)  # fmt: skip
BROWSERS = (
    "Chrome", "Mobile Safari", "Chrome Mobile", "Safari", "Edge", "Firefox", "Samsung Internet",
    "Chrome Mobile WebView", "Facebook", "Instagram", "Opera", "Chrome Mobile iOS",
    "Mobile Safari UI/WKWebView", "Firefox Mobile", "Google", "MiuiBrowser", "Yandex Browser",
    "UC Browser", "Opera Mobile", "Edge Mobile", "Silk", "Amazon Silk", "Vivaldi", "Other",
)  # fmt: skip


def zipf(n: int, s: float) -> list[float]:
    weights = [1 / (k**s) for k in range(1, n + 1)]
    total = sum(weights)
    return [w / total for w in weights]


class Values:
    """A dimension's values in order of likelihood, and how many of them ``n`` events hit."""

    def __init__(self, values: list[Any], s: float) -> None:
        self.values = values
        self.p = zipf(len(values), s)
        self._distinct: dict[int, int] = {}

    def distinct(self, n: int) -> int:
        key = n if n < 100 else int(float(f"{n:.2g}"))
        found = self._distinct.get(key)
        if found is None:
            found = self._distinct[key] = max(
                1, round(sum(1 - (1 - p) ** key for p in self.p)) if key else 0
            )
        return found if n else 0

    def split(self, n: int, order: list[int], rng: random.Random) -> list[tuple[Any, int]]:
        """``n`` events over the values they hit: the likely ones (in ``order``) and a few of
        the tail, each at least one event."""
        d = min(self.distinct(n), n)
        if not d:
            return []
        head = math.ceil(d * 0.8)
        positions = [*range(head), *rng.sample(range(head, len(order)), d - head)]
        chosen = [order[j] for j in positions]
        weights = [self.p[j] for j in positions]
        total = sum(weights)
        counts = [max(1, int(n * w / total)) for w in weights]
        counts[0] += n - sum(counts)
        return [(self.values[i], c) for i, c in zip(chosen, counts, strict=True) if c > 0]


def countries() -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = list(HOMES)
    for a in letters:
        for b in letters:
            if len(codes) == 100:
                return codes
            if a + b not in codes:
                codes.append(a + b)
    return codes


def devices(rng: random.Random) -> list[tuple[str, str, str]]:
    combos: list[tuple[str, str, str]] = []
    while len(combos) < 120:
        combo = (rng.choice(DEVICE_TYPES), rng.choice(OS_FAMILIES), rng.choice(BROWSERS))
        if combo not in combos:
            combos.append(combo)
    return combos


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

Row = tuple[Any, ...]


def generate(
    events: int, days: int, rng: random.Random
) -> dict[str, list[Row]]:  # table name -> rows
    geo = Values(countries(), 1.4)
    dev = Values(devices(rng), 1.2)
    shares = zipf(N_LINE_ITEMS, 1.0)
    rng.shuffle(shares)
    geo_orders = []
    for li in range(N_LINE_ITEMS):
        home = li % len(HOMES)
        geo_orders.append([home] + [i for i in range(len(geo.values)) if i != home])
    dev_order = list(range(len(dev.values)))
    start = datetime(2026, 3, 1, tzinfo=UTC)
    per_day = events / days
    rows: dict[str, dict[Row, list[int]]] = {
        name: {}
        for name in (
            "rollup_geo_line_item_daily",
            "rollup_geo_daily",
            "rollup_device_line_item_daily",
            "rollup_device_daily",
            "rollup_geo_line_item_hourly",
            "rollup_geo_hourly",
            "rollup_device_line_item_hourly",
            "rollup_device_hourly",
        )
    }

    def add(table: str, key: Row, imp_type: int, n: int) -> None:
        invalid = round(n * INVALID_SHARE)
        valid = n - invalid
        slot = rows[table].setdefault(key, [0] * len(t.ROLLUP_SUMS))  # in Counters order
        if imp_type == 9:
            slot[0] += valid
            slot[2] += invalid
            slot[4] += valid * 1_500  # media cost: a 1.50 CPM
            slot[5] += valid * 2_500
        else:
            slot[1] += valid
            slot[3] += invalid

    def cells(when: datetime, n_li: float, suffix: str, li: int) -> None:
        adv = li % N_ADVERTISERS + 1
        for imp_type, n in ((9, round(n_li)), (10, round(n_li * CLICK_SHARE))):
            for (country,), count in (((c,), k) for c, k in geo.split(n, geo_orders[li], rng)):
                add(
                    f"rollup_geo_line_item_{suffix}",
                    (when, imp_type, adv, li + 1, country),
                    imp_type,
                    count,
                )  # noqa: E501
                add(f"rollup_geo_{suffix}", (when, imp_type, country), imp_type, count)
            for combo, count in dev.split(n, dev_order, rng):
                add(
                    f"rollup_device_line_item_{suffix}",
                    (when, imp_type, adv, li + 1, *combo),
                    imp_type,
                    count,
                )  # noqa: E501
                add(f"rollup_device_{suffix}", (when, imp_type, *combo), imp_type, count)

    for d in range(days):
        day = start + timedelta(days=d)
        for li in range(N_LINE_ITEMS):
            cells(day, per_day * shares[li], "daily", li)
            if d in (0, days - 1):
                for h in range(24):
                    cells(day + timedelta(hours=h), per_day * shares[li] / 24, "hourly", li)
    for family in ("rollup_geo_line_item", "rollup_device_line_item"):
        rows[f"{family}_monthly"] = by_month(rows[f"{family}_daily"])
    return {name: [(*k, *v) for k, v in table.items()] for name, table in rows.items()}


def by_month(daily: dict[Row, list[int]]) -> dict[Row, list[int]]:
    """Daily rows summed per UTC month (keyed by the first of the month)."""
    months: dict[Row, list[int]] = {}
    for (day, *key), sums in daily.items():
        slot = months.setdefault((day.replace(day=1), *key), [0] * len(sums))
        for i, value in enumerate(sums):
            slot[i] += value
    return months


def load(engine: Engine, data: dict[str, list[Row]]) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    audit = {"state": "active", "created_at": now, "last_modified": now}
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
                    "revenue_value_micros": 2_500_000,
                    **audit,
                }
                for i in range(1, N_LINE_ITEMS + 1)
            ],
        )
    for name, table_rows in data.items():
        _insert(engine, t.metadata.tables[name], sorted(table_rows))


def _insert(engine: Engine, table: Table, rows: list[Row]) -> None:
    columns = [c.name for c in table.columns]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            buf = io.StringIO()
            for row in rows:
                buf.write("\t".join(_pg_text(v) for v in row) + "\n")
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                copy.write(buf.getvalue())
        else:
            time_format = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME text
            marks = ", ".join("?" * len(columns))
            cursor.executemany(
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})",
                [(row[0].strftime(time_format), *row[1:]) for row in rows],
            )
        raw.commit()
    finally:
        raw.close()


def _pg_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------

REPORTS: dict[str, dict[str, object]] = {
    "by country, cumulative": {"group_by": "country"},
    "by country x day": {"group_by": "country", "interval": "day"},
    "by device type, cumulative": {"group_by": "device_type"},
    "by device type x OS x browser": {"group_by": "device_type,os,browser"},
    "country=US,FR by imp type x day": {
        "group_by": "imp_type",
        "country": "US,FR",
        "interval": "day",
    },  # noqa: E501
    "device_type=mobile by browser": {"group_by": "browser", "device_type": "mobile"},
    "one line item by country x day": {
        "group_by": "country",
        "line_item_id": "1",
        "interval": "day",
    },  # noqa: E501
    "every line item by country": {"group_by": "line_item,country"},
    "every line item by device type": {"group_by": "line_item,device_type"},
    "every line item by OS x browser": {"group_by": "line_item,os,browser"},
    "every line item by country x month": {"group_by": "line_item,country", "interval": "month"},
    "by country, America/New_York": {"group_by": "country", "timezone": "America/New_York"},
}


@contextmanager
def database(kind: str) -> Iterator[str]:
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


def run_on(
    kind: str,
    data: dict[str, list[Row]],
    first: date,
    last: date,
    repeat: int,
    reports_to_run: dict[str, dict[str, object]],
) -> dict[str, Any]:
    """Load ``data`` into a new database of ``kind`` and time ``reports_to_run`` there."""
    with database(kind) as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            load(engine, data)
            print(f"loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            if kind == "postgresql":
                with engine.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                        "VACUUM ANALYZE"
                    )
            reports = build_report_engine(engine)
            gc.collect()
            gc.freeze()
            timings = {}
            for label, params in reports_to_run.items():
                request = parse_report_request(
                    {
                        "start": first.isoformat(),
                        "end": (last + timedelta(days=1)).isoformat(),
                        "interval": "cumulative",
                        "metrics": "imps,clicks,invalid_imps,media_cost,booked_revenue,ctr",
                        **params,
                    }
                )
                walls = []
                rows = 0
                for _ in range(repeat):
                    tick = time.perf_counter()
                    rows = len(reports.run(request).rows)
                    walls.append((time.perf_counter() - tick) * 1000)
                timings[label] = {
                    "rows": rows,
                    "median_ms": round(statistics.median(walls), 1),
                    "best_ms": round(min(walls), 1),
                }
                print(
                    f"{label:40s} {rows:7d} rows  median {statistics.median(walls):7.1f} ms"
                    f"  best {min(walls):7.1f} ms",
                    flush=True,
                )
            gc.unfreeze()
            return timings
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", default="sqlite", help="sqlite, postgresql or both (comma-separated)"
    )
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--line-items-only", action="store_true", help="only the every-line-item reports"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    reports_to_run = {
        label: params
        for label, params in REPORTS.items()
        if not args.line_items_only or label.startswith("every line item")
    }
    rng = random.Random(17)
    started = time.perf_counter()
    data = generate(args.events, args.days, rng)
    counts = {name: len(rows) for name, rows in data.items()}
    print(f"generated in {time.perf_counter() - started:.1f} s: {counts}", file=sys.stderr)
    first = date(2026, 3, 1)
    last = first + timedelta(days=args.days - 1)
    results: dict[str, Any] = {"events": args.events, "rows": counts}
    for kind in args.db.split(","):
        print(f"-- {kind}")
        results[kind] = run_on(kind, data, first, last, args.repeat, reports_to_run)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
