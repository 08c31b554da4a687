"""The reporting summary (``reporting/summary.summary`` and ``GET /api/v1/reports/summary``) on
SQLite and PostgreSQL: totals, every grouping, filters, hour rounding, names, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.rollup import fold
from adtrack.bootstrap import build_report_engine
from adtrack.domain.errors import ValidationError
from adtrack.reporting.engine import ReportEngine
from adtrack.reporting.summary import summary
from tests.support.api_fixtures import (
    API,
    ApiTestbed,
    create_chain,
    error_fields,
    make_testbed,
    tracked_event,
)

T0 = datetime(2026, 5, 4, 22, 15, tzinfo=UTC)  # late evening: +2 h is the next UTC day
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def seed_catalogue(engine: Engine) -> dict[str, dict[str, Any]]:
    """Two trackers of one advertiser; the click tracker has no payment rule."""
    audit = {"created_at": NOW, "last_modified": NOW}
    with engine.begin() as conn:
        conn.execute(t.advertisers.insert(), [{"id": 1, "name": "Acme", **audit}])
        conn.execute(
            t.line_items.insert(), [{"id": 2, "advertiser_id": 1, "name": "Spring", **audit}]
        )
        conn.execute(t.publishers.insert(), [{"id": 3, "name": "Daily News", **audit}])
        conn.execute(
            t.placements.insert(), [{"id": 4, "publisher_id": 3, "name": "Top banner", **audit}]
        )
        conn.execute(
            t.payment_rules.insert(),
            [{"id": 5, "publisher_id": 3, "name": "Base", "is_base": True, **audit}],
        )
        chain = {"advertiser_id": 1, "line_item_id": 2, "publisher_id": 3, "placement_id": 4}
        conn.execute(
            t.trackers.insert(),
            [
                {"id": 6, "tracker_type": "impression", "name": "Imps", **chain, **audit},
                {"id": 7, "tracker_type": "click", "name": "Clicks", **chain, **audit},
            ],
        )
        conn.execute(t.trackers.update().where(t.trackers.c.id == 6).values(payment_rule_id=5))
    return {
        "imp": {"id": 6, **chain, "payment_rule_id": 5},
        "click": {"id": 7, **chain, "payment_rule_id": None},
    }


@pytest.fixture
def reports(engine: Engine) -> ReportEngine:
    return build_report_engine(engine)


@pytest.fixture
def seeded(engine: Engine) -> dict[str, dict[str, Any]]:
    trackers = seed_catalogue(engine)
    imp, click = trackers["imp"], trackers["click"]
    SqlRollupSink(engine).write(
        fold(
            [
                tracked_event(imp, 9, T0, cost=1_250, revenue=2_500),
                tracked_event(imp, 9, T0 + timedelta(minutes=30), cost=1_250, revenue=2_500),
                tracked_event(
                    imp, 9, T0 + timedelta(hours=2), cost=1_000_000, revenue=3
                ),  # next day
                tracked_event(imp, 9, T0, invalid=True, cost=9, revenue=9),
                tracked_event(click, 10, T0 + timedelta(minutes=5), cost=500_000),
                tracked_event(click, 10, T0 + timedelta(minutes=6), invalid=True),
            ]
        ),
        starts={},
        positions=None,
    )
    return trackers


def test_totals_and_money_as_decimal_strings(reports: ReportEngine, seeded: Any) -> None:
    result = summary(reports, T0.date(), T0.date() + timedelta(days=2))
    assert result["totals"] == {
        "imps": 3,
        "clicks": 1,
        "invalid_imps": 1,
        "invalid_clicks": 1,
        "media_cost": "1.502500",
        "booked_revenue": "0.005003",
    }
    assert result["rows"] == [result["totals"]]  # no grouping: one row
    assert (result["start"], result["end"]) == ("2026-05-04T00:00:00Z", "2026-05-06T00:00:00Z")


def test_group_by_catalogue_dimensions_with_names(reports: ReportEngine, seeded: Any) -> None:
    result = summary(
        reports,
        T0.date(),
        T0.date() + timedelta(days=2),
        ["imp_type", "tracker", "advertiser", "placement", "payment_rule"],
    )
    rows = {row["tracker_id"]: row for row in result["rows"]}
    assert rows[6]["imp_type"] == 9 and rows[6]["imp_type_name"] == "External Impression"
    assert rows[6]["tracker_name"] == "Imps" and rows[6]["advertiser_name"] == "Acme"
    assert rows[6]["placement_name"] == "Top banner" and rows[6]["payment_rule_name"] == "Base"
    assert (rows[6]["imps"], rows[6]["invalid_imps"], rows[6]["media_cost"]) == (3, 1, "1.002500")
    assert rows[7]["imp_type_name"] == "External Click"
    assert rows[7]["payment_rule_id"] is None and rows[7]["payment_rule_name"] is None
    assert (rows[7]["clicks"], rows[7]["invalid_clicks"], rows[7]["media_cost"]) == (
        1,
        1,
        "0.500000",
    )


def test_group_by_hour_and_day_in_utc(reports: ReportEngine, seeded: Any) -> None:
    by_day = summary(reports, T0.date(), T0.date() + timedelta(days=2), ["day"])
    assert [(r["day"], r["imps"], r["clicks"]) for r in by_day["rows"]] == [
        ("2026-05-04", 2, 1),
        ("2026-05-05", 1, 0),
    ]
    by_hour = summary(reports, T0.date(), T0.date() + timedelta(days=2), ["hour", "imp_type"])
    assert [(r["hour"], r["imp_type"], r["imps"] + r["clicks"]) for r in by_hour["rows"]] == [
        ("2026-05-04T22:00:00Z", 9, 2),
        ("2026-05-04T22:00:00Z", 10, 1),
        ("2026-05-05T00:00:00Z", 9, 1),
    ]


def test_daily_and_hourly_rollups_give_the_same_numbers(reports: ReportEngine, seeded: Any) -> None:
    span = (T0.date(), T0.date() + timedelta(days=2))  # whole days: read from rollup_daily
    daily = summary(reports, *span, ["tracker"])["rows"]
    hourly: dict[int, dict[str, int]] = {}  # grouped by hour: read from rollup_hourly
    for row in summary(reports, *span, ["tracker", "hour"])["rows"]:
        sums = hourly.setdefault(row["tracker_id"], {"imps": 0, "clicks": 0, "invalid_imps": 0})
        for name in sums:
            sums[name] += row[name]
    assert {
        r["tracker_id"]: {n: r[n] for n in ("imps", "clicks", "invalid_imps")} for r in daily
    } == hourly


def test_range_is_whole_hours_and_end_is_exclusive(reports: ReportEngine, seeded: Any) -> None:
    # 22:40 - 23:10 covers the whole 22:00 and 23:00 hours.
    result = summary(reports, T0 + timedelta(minutes=25), T0 + timedelta(minutes=55))
    assert (result["start"], result["end"]) == ("2026-05-04T22:00:00Z", "2026-05-05T00:00:00Z")
    assert result["totals"]["imps"] == 2
    just_before = summary(reports, T0 - timedelta(hours=3), T0.replace(minute=0))
    assert just_before["totals"]["imps"] == 0
    naive = summary(reports, datetime(2026, 5, 5), datetime(2026, 5, 6))  # naive = UTC
    assert naive["totals"]["imps"] == 1


def test_filters(reports: ReportEngine, seeded: Any) -> None:
    span = (T0.date(), T0.date() + timedelta(days=2))
    assert summary(reports, *span, filters={"tracker": [7]})["totals"]["clicks"] == 1
    assert summary(reports, *span, filters={"tracker": [7]})["totals"]["imps"] == 0
    assert summary(reports, *span, filters={"imp_type": [9]})["totals"]["imps"] == 3
    assert summary(reports, *span, filters={"payment_rule": [0]})["totals"]["clicks"] == 1
    assert summary(reports, *span, filters={"advertiser": [999]})["totals"]["imps"] == 0
    assert summary(reports, *span, filters={"advertiser": []})["totals"]["imps"] == 3


def test_refusals_name_the_field(reports: ReportEngine) -> None:
    day = date(2026, 5, 4)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"start": day, "end": day}, "end"),
        ({"start": day, "end": day - timedelta(days=1)}, "end"),
        ({"start": day, "end": day + timedelta(days=1), "group_by": ["campaign"]}, "group_by"),
        ({"start": day, "end": day + timedelta(days=1), "filters": {"hour": [1]}}, "hour"),
        ({"start": day, "end": day + timedelta(days=1), "filters": {"tracker": ["x"]}}, "tracker"),
        ({"start": "2026-05-04", "end": day}, "start"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as caught:
            summary(reports, **kwargs)
        assert caught.value.field == field, kwargs


# --- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
def api(migrated_db_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    yield from make_testbed(migrated_db_url, tmp_path)


def test_summary_over_http(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    imp, click = chain["impression_tracker"], chain["click_tracker"]
    SqlRollupSink(api.engine).write(
        fold(
            [
                tracked_event(imp, 9, T0, cost=1_250, revenue=2_500),
                tracked_event(imp, 9, T0, cost=1_250, revenue=2_500),
                tracked_event(click, 10, T0, invalid=True),
            ]
        ),
        starts={},
        positions=None,
    )
    url = f"{API}/reports/summary"
    params = {"start": "2026-05-04", "end": "2026-05-05T00:00:00Z", "group_by": "tracker,imp_type"}

    assert api.anonymous.get(url, params=params).status_code == 401
    response = api.reporter.get(url, params=params)  # any role may read
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["totals"] == {
        "imps": 2,
        "clicks": 0,
        "invalid_imps": 0,
        "invalid_clicks": 1,
        "media_cost": "0.002500",
        "booked_revenue": "0.005000",
    }
    names = {row["tracker_name"]: row for row in body["rows"]}
    assert names[imp["name"]]["imps"] == 2 and names[click["name"]]["invalid_clicks"] == 1

    repeated = api.reporter.get(
        url,
        params=[
            ("start", "2026-05-04"),
            ("end", "2026-05-05"),
            ("group_by", "tracker"),
            ("tracker_id", str(click["id"])),
        ],
    )
    assert repeated.status_code == 200
    assert [row["tracker_id"] for row in repeated.json()["rows"]] == [click["id"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": "2026-05-05"}, "start"),
        ({"start": "yesterday", "end": "2026-05-05"}, "start"),
        ({"start": "2026-05-04", "end": "2026-05-04"}, "end"),
        ({"start": "2026-05-04", "end": "2026-05-05", "group_by": "hour,colour"}, "group_by"),
        ({"start": "2026-05-04", "end": "2026-05-05", "tracker_id": "7,x"}, "tracker_id"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    api: ApiTestbed, params: dict[str, str], field: str
) -> None:
    response = api.reporter.get(f"{API}/reports/summary", params=params)
    assert response.status_code == 422, response.text
    assert error_fields(response) == [field]
