"""Shared helpers for the reporting tests: migrated databases, a small catalogue, and an
independent fold of raw events into rollup rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.bootstrap import build_report_engine
from adtrack.domain.events import Event
from adtrack.reporting.request import ReportRequest
from adtrack.reporting.results import Report
from tests.support import postgres
from tests.support.raw_events import seed_raw_events

NOW = datetime(2026, 1, 1, tzinfo=UTC)

# Module-scoped database parameters for the reporting tests (one migrated database per module
# and backend, since hypothesis runs many examples against it).
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def run_report(engine: Engine, request: ReportRequest) -> Report:
    """``request`` run as the API runs it: by the report engine bootstrap builds on ``engine``."""
    return build_report_engine(engine).run(request)


@contextmanager
def migrated_engine(backend: str, tmp_dir: Path) -> Iterator[Engine]:
    """A migrated database on ``backend`` (a file in ``tmp_dir``, or a throw-away PostgreSQL
    database dropped afterwards), with the small catalogue below."""
    with _database_url(backend, tmp_dir) as url:
        upgrade(url)
        engine = make_engine(url)
        seed_catalogue(engine)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def _database_url(backend: str, tmp_dir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / 'reports.db'}"
        return
    with postgres.temporary_database() as url:
        yield url


@dataclass(frozen=True)
class TrackerSpec:
    id: int
    imp_type: int
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    placement_id: int | None
    payment_rule_id: int | None
    revenue_type: str = "cpm"

    def value(self, dimension: str) -> int:
        """This tracker's id for a report dimension (0 for a missing placement or rule)."""
        if dimension == "tracker":
            return self.id
        if dimension == "imp_type":
            return self.imp_type
        return int(getattr(self, f"{dimension}_id") or 0)


# A small catalogue: 2 advertisers, 3 line items, 2 publishers, 2 placements, 2 rules, 6 trackers.
TRACKERS = (
    TrackerSpec(1, 9, 1, 1, 1, 1, 1),
    TrackerSpec(2, 10, 1, 1, 1, 1, 1, "cpc"),
    TrackerSpec(3, 9, 1, 2, 2, None, 2),
    TrackerSpec(4, 10, 2, 3, 2, 2, None, "cpc"),
    TrackerSpec(5, 9, 2, 3, 1, None, None, "none"),
    TrackerSpec(6, 10, 2, 3, 1, 1, 1),
)
NAMES = {
    "advertiser": {1: "Acme Shoes", 2: "Blue Bank"},
    "line_item": {1: "Spring sale", 2: "Brand awareness", 3: "Retargeting"},
    "publisher": {1: "Daily News", 2: "Sports Weekly"},
    "placement": {1: "Top banner", 2: "Sidebar"},
    "payment_rule": {1: "Base rule", 2: "Premium CPM"},
    "tracker": {tr.id: f"Tracker {tr.id}" for tr in TRACKERS},
}


def seed_catalogue(engine: Engine, deleted_line_item: int | None = None) -> None:
    audit = {"created_at": NOW, "last_modified": NOW, "state": "active"}
    with engine.begin() as conn:
        for i, name in NAMES["advertiser"].items():
            conn.execute(t.advertisers.insert(), {"id": i, "name": name, **audit})
        for i, name in NAMES["line_item"].items():
            conn.execute(
                t.line_items.insert(),
                {
                    "id": i,
                    "advertiser_id": 1 if i < 3 else 2,
                    "name": name,
                    "revenue_type": "cpm",
                    "revenue_value_micros": 1_000_000,
                    **audit,
                    "deleted_at": NOW if i == deleted_line_item else None,
                },
            )
        for i, name in NAMES["publisher"].items():
            conn.execute(t.publishers.insert(), {"id": i, "name": name, **audit})
        for i, name in NAMES["placement"].items():
            conn.execute(t.placements.insert(), {"id": i, "publisher_id": i, "name": name, **audit})
        for i, name in NAMES["payment_rule"].items():
            conn.execute(
                t.payment_rules.insert(),
                {"id": i, "publisher_id": i, "name": name, "is_base": i == 1, **audit},
            )
        for tr in TRACKERS:
            conn.execute(
                t.trackers.insert(),
                {
                    "id": tr.id,
                    "tracker_type": "impression" if tr.imp_type == 9 else "click",
                    "name": NAMES["tracker"][tr.id],
                    "advertiser_id": tr.advertiser_id,
                    "line_item_id": tr.line_item_id,
                    "publisher_id": tr.publisher_id,
                    "placement_id": tr.placement_id,
                    "payment_rule_id": tr.payment_rule_id,
                    **audit,
                },
            )


@dataclass(frozen=True)
class RawEvent:
    ts: datetime  # aware UTC
    tracker: TrackerSpec
    media_cost_micros: int
    booked_revenue_micros: int
    invalid: bool
    ancost_used: bool = False
    cachebuster: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    country: str | None = None
    device_type: str | None = None
    os: str | None = None
    browser: str | None = None

    def row(self, event_id: str) -> dict[str, object]:
        tr = self.tracker
        return {
            "event_id": event_id,
            "ts": self.ts,
            "imp_type": tr.imp_type,
            "tracker_id": tr.id,
            "advertiser_id": tr.advertiser_id,
            "line_item_id": tr.line_item_id,
            "publisher_id": tr.publisher_id,
            "placement_id": tr.placement_id,
            "payment_rule_id": tr.payment_rule_id,
            "media_cost_micros": self.media_cost_micros,
            "booked_revenue_micros": self.booked_revenue_micros,
            "revenue_type": tr.revenue_type,
            "ancost_used": self.ancost_used,
            "cachebuster": self.cachebuster,
            "ip": None,
            "user_agent": self.user_agent,
            "referrer": self.referrer,
            "invalid": self.invalid,
            "invalid_reason": "bot" if self.invalid else None,
            "redirect_url": None,
            "country": self.country,
            "device_type": self.device_type,
            "os": self.os,
            "browser": self.browser,
        }


def rollup_rows(events: Iterable[RawEvent], daily: bool) -> list[dict[str, object]]:
    """Fold events into rollup rows (hourly, or daily by UTC day) the way the aggregator does:
    valid events count imps/clicks and money; invalid ones only invalid_imps/invalid_clicks."""
    sums: dict[tuple[object, ...], list[int]] = {}
    for ev in events:
        tr = ev.tracker
        when = ev.ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if daily:
            when = when.replace(hour=0)
        key = (
            when,
            tr.imp_type,
            tr.id,
            tr.advertiser_id,
            tr.line_item_id,
            tr.publisher_id,
            tr.placement_id or 0,
            tr.payment_rule_id or 0,
        )
        slot = sums.setdefault(key, [0] * len(t.ROLLUP_SUMS))  # (no beacons or conversions here)
        is_imp = tr.imp_type == 9
        if ev.invalid:
            slot[2 if is_imp else 3] += 1
        else:
            slot[0 if is_imp else 1] += 1
            slot[4] += ev.media_cost_micros
            slot[5] += ev.booked_revenue_micros
    # The key and the sums above follow the rollup tables' column order.
    names = [c.name for c in (t.rollup_daily if daily else t.rollup_hourly).columns]
    return [dict(zip(names, (*k, *v), strict=True)) for k, v in sums.items()]


def load_rollups(engine: Engine, events: list[RawEvent]) -> None:
    with engine.begin() as conn:
        conn.execute(t.rollup_hourly.delete())
        conn.execute(t.rollup_daily.delete())
        hourly = rollup_rows(events, daily=False)
        daily = rollup_rows(events, daily=True)
        if hourly:
            conn.execute(t.rollup_hourly.insert(), hourly)
        if daily:
            conn.execute(t.rollup_daily.insert(), daily)


def load_events(engine: Engine, events: list[RawEvent], raw_events_dir: Path) -> None:
    """Archive ``events`` (ids ``ev-000000000``, ... in list order) in the raw-event archive
    at ``raw_events_dir``, listed in ``engine``'s manifest, as the aggregator would."""
    seed_raw_events(
        engine,
        raw_events_dir,
        [to_event(ev, f"ev-{i:09d}") for i, ev in enumerate(events)],
        batch_key=f"reporting-{uuid.uuid4().hex}",
    )


def hours(start: datetime, n: int) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(n)]


def to_event(raw: RawEvent, event_id: str) -> Event:
    """The domain event the collector would have logged for ``raw``."""
    row = raw.row(event_id)
    row["ts"] = int(raw.ts.timestamp()) * 1_000_000 + raw.ts.microsecond
    return Event.from_dict(row)


def clear_reporting_tables(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (
            t.events,
            t.raw_event_files,
            t.rollup_hourly,
            t.rollup_daily,
            t.rollup_invalid_hourly,
            t.rollup_geo_hourly,
            t.rollup_geo_daily,
            t.rollup_device_hourly,
            t.rollup_device_daily,
            t.rollup_geo_line_item_hourly,
            t.rollup_geo_line_item_daily,
            t.rollup_geo_line_item_monthly,
            t.rollup_device_line_item_hourly,
            t.rollup_device_line_item_daily,
            t.rollup_device_line_item_monthly,
            t.rollup_conversion_pixel_hourly,
            t.rollup_conversion_pixel_daily,
            t.eventlog_checkpoints,
        ):
            conn.execute(table.delete())
