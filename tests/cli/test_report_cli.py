"""``adtrack report`` (also by conversion pixel), ``adtrack feed`` and ``adtrack retention purge``
on a real database."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.db import make_engine
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.rollup import fold
from adtrack.cli.main import app
from adtrack.services.ports import RollupDelta
from tests.support.pixel_conversions import count_conversions, seed_pixels
from tests.support.raw_events import archived_count
from tests.support.reporting import (
    TRACKERS,
    RawEvent,
    load_events,
    load_rollups,
    migrated_engine,
    to_event,
)

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    recent = [
        RawEvent(
            now - timedelta(hours=2),
            TRACKERS[0],
            1_500_000,
            2_000_000,
            False,
            country="NL",
            device_type="tablet",
            os="iOS",
            browser="Mobile Safari",
        ),
        RawEvent(
            now - timedelta(hours=2),
            TRACKERS[1],
            0,
            1_000_000,
            False,
            referrer="https://a.example/",
        ),
        RawEvent(now - timedelta(hours=1), TRACKERS[1], 0, 1_000_000, True),
    ]
    old = [RawEvent(now - timedelta(days=40), TRACKERS[1], 1, 1, False)]
    with migrated_engine("sqlite", tmp_path) as engine:
        load_events(engine, recent + old, tmp_path / "raw-events")
        load_rollups(engine, recent + old)
        audience = fold([to_event(ev, f"ev-{i}") for i, ev in enumerate(recent + old)])
        SqlRollupSink(engine).add_rollups(RollupDelta(geo=audience.geo, devices=audience.devices))
    yield {
        "ADTRACK_DATA_DIR": str(tmp_path),
        "ADTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'reports.db'}",
        "ADTRACK_SMTP_URL": "",
        "START": (now - timedelta(hours=3)).isoformat(),
        "END": now.isoformat(),
    }


def test_report_prints_a_table_and_csv(env: dict[str, str], tmp_path: Path) -> None:
    args = ["report", "--start", env["START"], "--end", env["END"], "--interval", "cumulative"]
    table = runner.invoke(app, [*args, "--group-by", "line_item,imp_type"], env=env)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["interval_start", "line_item", "imp_type"]
    assert any("1 Spring sale" in line and "9 External Impression" in line for line in lines)
    assert any("10 External Click" in line for line in lines)
    totals = lines[-1].split()
    assert totals[0] == "Totals" and "1.500000" in totals and "3.000000" in totals

    as_csv = runner.invoke(app, [*args, "--group-by", "tracker", "--format", "csv"], env=env)
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [(r["tracker_id"], r["imps"], r["clicks"], r["invalid_clicks"]) for r in rows] == [
        ("1", "1", "0", "0"),
        ("2", "0", "1", "1"),
        ("", "1", "1", "1"),
    ]

    out = tmp_path / "report.xlsx"
    xlsx = runner.invoke(app, [*args, "--format", "xlsx", "-o", str(out)], env=env)
    assert xlsx.exit_code == 0, xlsx.output
    sheet = load_workbook(out).active
    assert list(sheet.iter_rows(values_only=True))[-1][0] == "Totals"


def test_report_by_audience(env: dict[str, str]) -> None:
    args = ["report", "--start", env["START"], "--end", env["END"], "--interval", "cumulative"]
    by_country = runner.invoke(
        app,
        [*args, "--group-by", "country", "--metrics", "imps,clicks", "--format", "csv"],
        env=env,
    )
    assert by_country.exit_code == 0, by_country.output
    rows = list(csv.reader(io.StringIO(by_country.output)))
    assert rows[0] == ["interval_start", "country", "imps", "clicks"]
    assert sorted(row[1:] for row in rows[1:-1]) == [["NL", "1", "0"], ["Unknown", "0", "1"]]
    tablets = runner.invoke(
        app,
        [*args, "--device-type", "tablet", "--os", "iOS", "--browser", "Mobile Safari"],
        env=env,
    )
    assert tablets.exit_code == 0, tablets.output
    assert tablets.output.splitlines()[-1].split()[:3] == ["Totals", "1", "0"]
    refused = runner.invoke(app, [*args, "--country", "Netherlands"], env=env)
    assert refused.exit_code == 1
    assert "error: country: must be two-letter country codes" in refused.output


def test_report_refusals_name_the_field(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["report", "--start", "2026-01-02", "--end", "2026-01-01"], env=env)
    assert result.exit_code == 1
    assert "error: end: must be after start" in result.output


def test_feed_clicks_and_retention_purge(env: dict[str, str]) -> None:
    feed = runner.invoke(
        app, ["feed", "clicks", "--start", env["START"], "--end", env["END"]], env=env
    )
    assert feed.exit_code == 0, feed.output
    rows = list(csv.DictReader(io.StringIO(feed.output)))
    assert [(r["tracker_id"], r["site_domain"], r["invalid"]) for r in rows] == [
        ("2", "a.example", "0"),
        ("2", "", "1"),
    ]
    too_long = runner.invoke(
        app, ["feed", "impressions", "--start", "2026-01-01", "--end", "2026-01-03"], env=env
    )
    assert too_long.exit_code == 1 and "error: end:" in too_long.output

    purge = runner.invoke(app, ["retention", "purge"], env=env)
    assert purge.exit_code == 0, purge.output
    assert "deleted 1 raw events older than 30 days" in purge.output
    assert (
        "deleted 0 conversion verdicts (and the order ids they counted) older than 100 days"
        in purge.output
    )
    engine = make_engine(env["ADTRACK_DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.rollup_hourly)).scalar() == 4
    assert archived_count(engine, Path(env["ADTRACK_DATA_DIR"]) / "raw-events") == 3
    engine.dispose()


@pytest.fixture
def pixel_env(tmp_path: Path) -> dict[str, str]:
    with migrated_engine("sqlite", tmp_path) as engine:
        seed_pixels(engine)
        count_conversions(engine)
    return {
        "ADTRACK_DATA_DIR": str(tmp_path),
        "ADTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'reports.db'}",
        "ADTRACK_SMTP_URL": "",
        "ADTRACK_TIMEZONE": "UTC",
    }


def test_report_by_conversion_pixel(pixel_env: dict[str, str]) -> None:
    args = ["report", "--start", "2026-03-10", "--end", "2026-03-13", "--interval", "cumulative"]
    table = runner.invoke(app, [*args, "--group-by", "conversion_pixel"], env=pixel_env)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == [
        "interval_start",
        "conversion_pixel",
        "conversions",
        "post_click_conversions",
        "post_view_conversions",
        "conversion_revenue",
    ]
    assert any("1 Checkout" in line and "14.845678" in line for line in lines)
    assert lines[-1].split() == ["Totals", "4", "2", "2", "21.845680"]
    as_csv = runner.invoke(
        app,
        [*args, "--conversion-pixel", "2", "--group-by", "line_item", "--format", "csv"],
        env=pixel_env,
    )
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [(r["line_item"], r["conversions"], r["conversion_revenue"]) for r in rows] == [
        ("Retargeting", "2", "7.000002"),
        ("", "2", "7.000002"),
    ]
    refused = runner.invoke(
        app, [*args, "--conversion-pixel-id", "1", "--metrics", "imps"], env=pixel_env
    )
    assert refused.exit_code == 1
    assert "error: metrics: imps is not reported by conversion pixel" in refused.output
