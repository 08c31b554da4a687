"""Reports by conversion pixel, on SQLite and PostgreSQL: the aggregator's sink keeps the
conversions it counts (not a duplicate order, an invalid or an unattributed one) by pixel, in
the same counters as the rollups without a pixel; reports group and filter by the pixel (named
from the catalogue), with its companions, in any time zone, as JSON, CSV and the text table;
any other metric or dimension with it is refused naming the field."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime

import pytest
from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables as t
from adtrack.domain.errors import ValidationError
from adtrack.reporting import formats
from adtrack.reporting.request import PIXEL_METRICS, parse_report_request
from tests.support.pixel_conversions import EXPECTED_DAILY, count_conversions, seed_pixels
from tests.support.reporting import BACKENDS, NAMES, migrated_engine, run_report

WINDOW = {"start": "2026-03-10", "end": "2026-03-13", "interval": "cumulative"}


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with migrated_engine(request.param, tmp_path_factory.mktemp("pixels")) as eng:
        seed_pixels(eng)
        count_conversions(eng)
        yield eng


def report(engine: Engine, **params: object) -> dict[str, object]:
    return formats.to_dict(run_report(engine, parse_report_request({**WINDOW, **params})))


def rows_of(result: dict[str, object], *columns: str) -> set[tuple[object, ...]]:
    rows = result["rows"]
    assert isinstance(rows, list)
    return {tuple(row[c] for c in columns) for row in rows}


def _day(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])  # SQLite hands back text in a raw select


def test_the_rollups_keep_the_counted_conversions_by_pixel(engine: Engine) -> None:
    pixel = t.rollup_conversion_pixel_daily.c
    key = [pixel.day, *(pixel[c] for c in t.CONVERSION_PIXEL_DIMENSIONS)]
    sums = [pixel[c] for c in ("conversions", "post_click_conversions")]
    sums += [pixel.post_view_conversions, pixel.conversion_revenue_micros]
    with engine.connect() as conn:
        daily = {
            (_day(row[0]), *row[1:8]): tuple(row[8:]) for row in conn.execute(select(*key, *sums))
        }
        hourly = conn.execute(
            select(
                func.count(),
                func.sum(t.rollup_conversion_pixel_hourly.c.conversion_revenue_micros),
            )
        ).one()
        general = t.rollup_hourly.c
        without_pixel = conn.execute(
            select(
                func.sum(general.conversions),
                func.sum(general.post_click_conversions),
                func.sum(general.post_view_conversions),
                func.sum(general.conversion_revenue_micros),
            )
        ).one()
    assert daily == EXPECTED_DAILY
    assert tuple(hourly) == (4, 21_845_680)
    # the same conversions as the rollups without a pixel count
    assert tuple(without_pixel) == (4, 2, 2, 21_845_680)


def test_grouped_by_pixel_and_its_companions(engine: Engine) -> None:
    by_pixel = report(engine, group_by="conversion_pixel")
    assert list(by_pixel["totals"]) == list(PIXEL_METRICS)  # the default of a report by pixel
    assert rows_of(
        by_pixel,
        "conversion_pixel_id",
        "conversion_pixel",
        "conversions",
        "post_click_conversions",
        "post_view_conversions",
        "conversion_revenue",
    ) == {
        (1, "Checkout", 2, 1, 1, "14.845678"),
        (2, "Sign-up", 2, 1, 1, "7.000002"),
    }
    assert by_pixel["totals"] == {
        "conversions": 4,
        "post_click_conversions": 2,
        "post_view_conversions": 2,
        "conversion_revenue": "21.845680",
    }
    with_line_items = report(
        engine, group_by="conversion_pixel,line_item", metrics="conversions,conversion_revenue"
    )
    assert rows_of(
        with_line_items, "conversion_pixel", "line_item", "conversions", "conversion_revenue"
    ) == {
        ("Checkout", NAMES["line_item"][1], 1, "12.345678"),
        ("Checkout", NAMES["line_item"][2], 1, "2.500000"),
        ("Sign-up", NAMES["line_item"][3], 2, "7.000002"),
    }
    by_tracker = report(engine, group_by="tracker,placement", conversion_pixel_id="2")
    assert rows_of(by_tracker, "tracker_id", "placement_id", "post_view_conversions") == {
        (4, 2, 0),
        (5, 0, 1),
    }


def test_filtered_by_pixel_in_a_time_zone_by_day(engine: Engine) -> None:
    berlin = report(
        engine,
        interval="day",
        timezone="Europe/Berlin",
        conversion_pixel_id="2",
        advertiser_id="2",
    )
    # c5 at 23:00 UTC on the 11th is the 12th in Berlin
    assert rows_of(berlin, "interval_start", "conversions", "conversion_revenue") == {
        ("2026-03-10T00:00:00+01:00", 1, "7.000001"),
        ("2026-03-12T00:00:00+01:00", 1, "0.000001"),
    }
    monthly = report(engine, interval="month", group_by="conversion_pixel")
    assert rows_of(monthly, "conversion_pixel_id", "conversions") == {(1, 2), (2, 2)}
    assert rows_of(report(engine, conversion_pixel_id="1,2", line_item_id="3"), "conversions") == {
        (2,)
    }


def test_csv_and_text_table(engine: Engine) -> None:
    request = parse_report_request({**WINDOW, "group_by": "conversion_pixel"})
    result = run_report(engine, request)
    table = list(csv.reader(io.StringIO(formats.to_csv(result))))
    assert table[0] == [
        "interval_start",
        "conversion_pixel_id",
        "conversion_pixel",
        *PIXEL_METRICS,
    ]
    assert sorted(row[1:] for row in table[1:-1]) == [
        ["1", "Checkout", "2", "1", "1", "14.845678"],
        ["2", "Sign-up", "2", "1", "1", "7.000002"],
    ]
    assert table[-1] == ["Totals", "", "", "4", "2", "2", "21.845680"]
    text = formats.to_table(result).splitlines()
    assert any("1 Checkout" in line and "14.845678" in line for line in text)


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"group_by": "conversion_pixel", "metrics": "conversions,imps"}, "metrics", "imps"),
        ({"conversion_pixel_id": "1", "metrics": "cpa"}, "metrics", "cpa"),
        ({"group_by": "conversion_pixel", "metrics": "roas"}, "metrics", "roas"),
        ({"conversion_pixel_id": "1", "metrics": "conversion_rate"}, "metrics", "conversion_rate"),
        ({"group_by": "conversion_pixel", "metrics": "viewable_imps"}, "metrics", "viewable"),
        ({"group_by": "conversion_pixel,imp_type"}, "group_by", "imp_type"),
        ({"group_by": "conversion_pixel", "country": "US"}, "country", "country"),
        ({"conversion_pixel_id": "1", "group_by": "device_type"}, "group_by", "device_type"),
        ({"group_by": "conversion_pixel", "imp_type": "11"}, "imp_type", "imp_type"),
        ({"conversion_pixel_id": "x"}, "conversion_pixel_id", ""),
    ],
)
def test_other_metrics_and_dimensions_are_refused_naming_the_field(
    params: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_report_request({**WINDOW, **params})
    assert caught.value.field == field
    assert words in caught.value.message


def test_without_a_pixel_the_metrics_are_all_of_them() -> None:
    request = parse_report_request({**WINDOW, "group_by": "line_item"})
    assert set(PIXEL_METRICS) < set(request.metrics)
    assert "imps" in request.metrics
