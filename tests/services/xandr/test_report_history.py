"""Importing the original platform's network analytics report (``services/xandr/report_history``)
on SQLite and PostgreSQL: a report spanning imported and live days, both column spellings, day
and hour rows in a stated time zone, line-numbered refusals, dry runs, re-imports and undo."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.rollup import fold
from adtrack.bootstrap import build_report_engine, build_report_history
from adtrack.config import Settings
from adtrack.domain.errors import Conflict, NotFound, ValidationError
from adtrack.domain.rollup_counters import Counters
from adtrack.reporting.request import Interval, ReportRequest
from adtrack.reporting.summary import summary
from adtrack.services.ports import HistoryKey, HistoryRowRecord, NewHistoryImport
from adtrack.services.xandr.report_history import ReportHistoryRefused, ReportHistoryService
from tests.support.api_fixtures import tracked_event
from tests.support.report_history import API_DAILY, NOW, seed_catalogue

LIVE = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)  # the first days on adtrack, after the move


@pytest.fixture
def history(engine: Engine, tmp_path: Any) -> ReportHistoryService:
    seed_catalogue(engine)
    settings = Settings.from_env({"ADTRACK_DATA_DIR": str(tmp_path)})
    return build_report_history(settings, engine)


def track_live(engine: Engine) -> None:
    """Live hits after the move, folded and committed the way the aggregator does."""
    chain = {"advertiser_id": 1, "line_item_id": 2, "publisher_id": 3, "placement_id": 4}
    imp, click = {"id": 6, **chain}, {"id": 7, **chain}
    SqlRollupSink(engine).write(
        fold(
            [
                tracked_event(imp, 9, LIVE, cost=1_250, revenue=2_500),
                tracked_event(imp, 9, LIVE + timedelta(minutes=1), cost=1_250, revenue=2_500),
                tracked_event(click, 10, LIVE + timedelta(minutes=2)),
            ]
        ),
        starts={},
        positions=None,
    )


def by_day(engine: Engine, start: date, end: date) -> list[tuple[str, int, int, str]]:
    result = summary(build_report_engine(engine), start, end, ["day"])
    rows: Any = result["rows"]
    return [(r["day"], r["imps"], r["clicks"], r["media_cost"]) for r in rows]


def import_text(service: ReportHistoryService, text: str, **kw: Any) -> Any:
    kw.setdefault("timezone", "UTC")
    return service.import_csv(
        text.encode(), file_name="report.csv", imported_by="admin@example.com", **kw
    )


def test_a_report_spans_imported_and_live_days(
    engine: Engine, history: ReportHistoryService
) -> None:
    track_live(engine)
    result = import_text(history, API_DAILY)
    assert result.imported is not None and result.refused == []
    assert (result.lines, result.rollup_rows) == (3, 3)
    assert (result.totals.imps, result.totals.clicks) == (1500, 7)
    assert by_day(engine, date(2026, 2, 27), date(2026, 3, 3)) == [
        ("2026-02-27", 1000, 7, "1.250000"),
        ("2026-02-28", 500, 0, "0.625000"),
        ("2026-03-02", 2, 1, "0.002500"),
    ]
    # Imported rows carry no tracker (tracker_id 0); by line item they add up with live ones.
    report = build_report_engine(engine).run(
        ReportRequest(
            start=datetime(2026, 2, 1, tzinfo=UTC),
            end=datetime(2026, 4, 1, tzinfo=UTC),
            interval=Interval.CUMULATIVE,
            group_by=("line_item", "tracker"),
        )
    )
    rows = {row.dimensions[1].id: row.counters.imps for row in report.rows}
    assert rows == {0: 1500, 6: 2, 7: 0}
    labels = {row.dimensions[1].id: row.dimensions[1].label for row in report.rows}
    assert labels[0] == "Imported history (no tracker)" and labels[6] == "Imps"
    by_tracker = summary(
        build_report_engine(engine), date(2026, 2, 27), date(2026, 3, 3), ["tracker"]
    )["rows"]
    assert [(r["tracker_id"], r["tracker_name"], r["imps"]) for r in by_tracker] == [  # type: ignore[union-attr]
        (None, "Imported history (no tracker)", 1500),
        (6, "Imps", 2),
        (7, "Clicks", 0),
    ]
    assert report.rows[0].dimensions[0].label == "Spring"


def test_the_console_export_headers_and_names_with_ids(
    engine: Engine, history: ReportHistoryService
) -> None:
    text = (
        "\ufeffDay,Imp Type,Line Item,Publisher,Placement,Imps,Clicks,Media Cost,Booked Revenue\n"
        '02/27/2026,External Impression,Spring (2),Daily News (3),Top banner (4),"1,200",0,'
        '"$1,000.50",$2.00\n'
        "02/27/2026,External Click,Spring (2),Daily News (3),--,0,12,$0.00,$0.00\n"
        "Totals,,,,,1200,12,$1000.50,$2.00\n"
    )
    result = import_text(history, text)
    assert result.refused == [] and result.lines == 2
    assert by_day(engine, date(2026, 2, 27), date(2026, 2, 28)) == [
        ("2026-02-27", 1200, 12, "1000.500000")
    ]


def test_daily_rows_in_a_time_zone_land_in_the_local_days_first_hour(
    engine: Engine, history: ReportHistoryService
) -> None:
    import_text(history, API_DAILY, timezone="America/New_York")
    with engine.connect() as conn:
        hours = sorted(
            conn.execute(
                select(t.rollup_hourly.c.hour).where(t.rollup_hourly.c.tracker_id == 0).distinct()
            ).scalars()
        )
    assert [h.replace(tzinfo=UTC) if h.tzinfo is None else h for h in hours] == [
        datetime(2026, 2, 27, 5, tzinfo=UTC),
        datetime(2026, 2, 28, 5, tzinfo=UTC),
    ]
    # A daily report in the import's time zone shows exactly the imported days.
    report = build_report_engine(engine).run(
        ReportRequest(
            start=datetime(2026, 2, 27, 5, tzinfo=UTC),
            end=datetime(2026, 3, 1, 5, tzinfo=UTC),
            interval=Interval.DAY,
            timezone="America/New_York",
        )
    )
    assert [(row.interval_start.date(), row.counters.imps) for row in report.rows] == [
        (date(2026, 2, 27), 1000),
        (date(2026, 2, 28), 500),
    ]


def test_hourly_rows_in_a_time_zone(engine: Engine, history: ReportHistoryService) -> None:
    text = (
        "hour,imp_type,line_item_id,publisher_id,imps,clicks,media_cost,booked_revenue\n"
        "2026-02-27 00:00:00,External Impression,2,3,10,0,0,0\n"
        "2026-02-27 23:00:00,External Impression,2,3,5,0,0,0\n"
    )
    import_text(history, text, timezone="Europe/Berlin")
    by_hour = summary(build_report_engine(engine), date(2026, 2, 26), date(2026, 2, 28), ["hour"])[
        "rows"
    ]
    assert [(r["hour"], r["imps"]) for r in by_hour] == [  # type: ignore[union-attr]
        ("2026-02-26T23:00:00Z", 10),
        ("2026-02-27T22:00:00Z", 5),
    ]


def test_refusals_name_their_lines_and_nothing_is_imported(
    engine: Engine, history: ReportHistoryService
) -> None:
    text = (
        "day,imp_type_id,line_item_id,publisher_id,placement_id,imps,clicks,media_cost,booked_revenue\n"
        "2026-02-27,9,2,3,4,10,0,0.1,0.2\n"
        "2026-02-27,9,99,3,4,10,0,0,0\n"
        "2026-02-27,9,2,98,0,10,0,0,0\n"
        "2026-02-27,9,2,3,97,10,0,0,0\n"
        "2026-02-27,9,2,3,40,10,0,0,0\n"
        "2026-02-27,1,2,3,4,10,0,0,0\n"
        "2026-02-27,9,2,3,4,ten,0,0,0\n"
        "2026-02-27,9,2,3,4,1,0,0.1234567,0\n"
        "2026-02-30,9,2,3,4,1,0,0,0\n"
    )
    with pytest.raises(ReportHistoryRefused) as refused:
        import_text(history, text)
    lines = [(r.line, r.field) for r in refused.value.result.refused]
    assert lines == [
        (3, "line_item_id"),
        (4, "publisher_id"),
        (5, "placement_id"),
        (6, "placement_id"),  # a placement of another publisher
        (7, "imp_type"),
        (8, "imps"),
        (9, "media_cost"),
        (10, "day"),
    ]
    assert "another publisher" in refused.value.result.refused[3].message
    assert history.imports() == []
    assert by_day(engine, date(2026, 2, 27), date(2026, 2, 28)) == []
    # Asked to, the good rows go in and the refused ones are reported.
    result = import_text(history, text, skip_refused=True)
    assert result.lines == 1 and len(result.refused) == 8
    assert by_day(engine, date(2026, 2, 27), date(2026, 2, 28)) == [
        ("2026-02-27", 10, 0, "0.100000")
    ]


def test_whole_file_refusals(history: ReportHistoryService) -> None:
    with pytest.raises(ValidationError) as no_date:
        import_text(history, "imp_type_id,line_item_id,publisher_id,imps\n9,2,3,1\n")
    assert no_date.value.field == "file"
    with pytest.raises(ValidationError) as monthly:
        import_text(history, "month,imp_type_id,line_item_id,publisher_id\n2026-02,9,2,3\n")
    assert monthly.value.field == "month"
    with pytest.raises(ValidationError) as zone:
        import_text(history, API_DAILY, timezone="Mars/Olympus")
    assert zone.value.field == "timezone"
    with pytest.raises(ValidationError) as binary:
        history.import_csv(b"\xff\xfe", file_name="x", timezone="UTC", imported_by="me")
    assert binary.value.field == "file"


def test_limits(engine: Engine, history: ReportHistoryService) -> None:
    small = ReportHistoryService(history._store, max_bytes=100, max_rows=2)  # noqa: SLF001
    with pytest.raises(ValidationError, match="ADTRACK_REPORT_HISTORY_MAX_BYTES"):
        import_text(small, API_DAILY)
    rows = ReportHistoryService(history._store, max_rows=2)  # noqa: SLF001
    with pytest.raises(ValidationError, match="ADTRACK_REPORT_HISTORY_MAX_ROWS"):
        import_text(rows, API_DAILY)


def test_a_dry_run_writes_nothing(engine: Engine, history: ReportHistoryService) -> None:
    result = import_text(history, API_DAILY, dry_run=True)
    assert result.dry_run and result.imported is None
    assert (result.lines, result.totals.imps, result.first_day, result.last_day) == (
        3,
        1500,
        date(2026, 2, 27),
        date(2026, 2, 28),
    )
    assert history.imports() == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.rollup_hourly)).scalar() == 0


def test_the_same_file_or_the_same_days_are_not_counted_twice(
    engine: Engine, history: ReportHistoryService
) -> None:
    first = import_text(history, API_DAILY)
    with pytest.raises(Conflict, match="imported already"):
        import_text(history, API_DAILY)
    # Another export covering the same day for the same line item: those rows are refused.
    again = API_DAILY.replace("1000,0,1.250000", "999,0,1.250000")
    with pytest.raises(ReportHistoryRefused) as refused:
        import_text(history, again)
    assert {r.line for r in refused.value.result.refused} == {2, 3, 4}
    assert f"import {first.imported.id}" in refused.value.result.refused[0].message
    assert by_day(engine, date(2026, 2, 27), date(2026, 3, 1))[0][1] == 1000


def test_undo_takes_the_import_out_again(engine: Engine, history: ReportHistoryService) -> None:
    track_live(engine)
    result = import_text(history, API_DAILY)
    assert [i.id for i in history.imports()] == [result.imported.id]
    history.undo(result.imported.id)
    assert history.imports() == []
    assert by_day(engine, date(2026, 2, 27), date(2026, 3, 3)) == [("2026-03-02", 2, 1, "0.002500")]
    with engine.connect() as conn:
        for table in (t.rollup_hourly, t.rollup_daily):
            left = select(func.count()).select_from(table).where(table.c.tracker_id == 0)
            assert conn.execute(left).scalar() == 0
    with pytest.raises(NotFound):
        history.undo(result.imported.id)
    # Once undone, the same file can be imported again.
    assert import_text(history, API_DAILY).imported is not None


def test_ids_are_the_original_platforms_first(
    engine: Engine, history: ReportHistoryService
) -> None:
    """Objects imported under another id (theirs was taken) are found by their original id."""
    audit = {"created_at": NOW, "last_modified": NOW}
    with engine.begin() as conn:
        conn.execute(t.advertisers.update().values(original_id=1001))
        conn.execute(
            t.line_items.insert(),
            [{"id": 50, "advertiser_id": 1, "name": "Moved", "original_id": 2, **audit}],
        )
    text = "day,imp_type_id,advertiser_id,line_item_id,publisher_id,imps\n2026-02-27,9,1001,2,3,5\n"
    import_text(history, text)
    report = build_report_engine(engine).run(
        ReportRequest(
            start=datetime(2026, 2, 27, tzinfo=UTC),
            end=datetime(2026, 2, 28, tzinfo=UTC),
            group_by=("line_item",),
        )
    )
    assert [(row.dimensions[0].id, row.counters.imps) for row in report.rows] == [(50, 5)]


def test_clock_changes_and_half_hour_zones(engine: Engine, history: ReportHistoryService) -> None:
    header = "hour,imp_type_id,line_item_id,publisher_id,imps\n"
    # 02:00 does not exist in New York on 8 March 2026 (clocks jump to 03:00).
    with pytest.raises(ReportHistoryRefused) as refused:
        import_text(history, header + "2026-03-08 02:00:00,9,2,3,1\n", timezone="America/New_York")
    assert [(r.line, r.field) for r in refused.value.result.refused] == [(2, "hour")]
    # Kolkata is UTC+5:30: local 10:00-11:00 is counted from the UTC hour starting in it (05:00).
    import_text(history, header + "2026-02-27 10:00:00,9,2,3,7\n", timezone="Asia/Kolkata")
    rows = summary(build_report_engine(engine), date(2026, 2, 27), date(2026, 2, 28), ["hour"])
    assert [(r["hour"], r["imps"]) for r in rows["rows"]] == [("2026-02-27T05:00:00Z", 7)]  # type: ignore[union-attr]


def test_hourly_reports_give_days_for_old_data(
    engine: Engine, history: ReportHistoryService
) -> None:
    """Past 100 days the platform's hourly reports hold a day in the hour column."""
    text = (
        "hour,imp_type_id,line_item_id,publisher_id,imps\n"
        "2025-10-01,9,2,3,240\n"
        "2026-02-27 06:00:00,9,2,3,5\n"
    )
    result = import_text(history, text, timezone="Europe/Berlin")
    assert result.refused == [] and result.granularity == "hour"
    rows = summary(build_report_engine(engine), date(2025, 9, 30), date(2026, 2, 28), ["hour"])
    assert [(r["hour"], r["imps"]) for r in rows["rows"]] == [  # type: ignore[union-attr]
        ("2025-09-30T22:00:00Z", 240),  # the local day's first hour (CEST, UTC+2)
        ("2026-02-27T05:00:00Z", 5),
    ]


def test_an_overlapping_import_made_meanwhile_is_refused_in_the_transaction(
    engine: Engine, history: ReportHistoryService
) -> None:
    """Two imports of the same days checked at the same moment: the store refuses the second
    inside its transaction (the service's own check saw nothing yet)."""
    other = API_DAILY.replace("1000,0,1.250000", "999,0,1.250000").encode()
    first = history.import_csv(
        API_DAILY.encode(), file_name="a.csv", timezone="UTC", imported_by="a", dry_run=True
    )
    second = history.import_csv(
        other, file_name="b.csv", timezone="UTC", imported_by="b", dry_run=True
    )
    assert first.refused == [] and second.refused == []  # both checked before either is added
    import_text(history, API_DAILY)
    store = history._store  # noqa: SLF001 - the add a second, concurrent import would make
    done = history.imports()[0]
    with engine.connect() as conn:
        rows = list(conn.execute(select(t.report_history_rows)))
    assert rows

    def aware(value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    again = [
        HistoryRowRecord(
            HistoryKey(
                aware(r.hour),
                r.imp_type,
                r.advertiser_id,
                r.line_item_id,
                r.publisher_id,
                r.placement_id,
                r.payment_rule_id,
            ),
            aware(r.covers_until),
            Counters(imps=1),
        )
        for r in rows
    ]
    new = NewHistoryImport("b.csv", "0" * 64, "UTC", "day", 1, None, None, Counters(imps=1), "b")
    with pytest.raises(Conflict, match=f"import {done.id}, made meanwhile"):
        store.add(new, again)
    assert [i.id for i in history.imports()] == [done.id]
    assert by_day(engine, date(2026, 2, 27), date(2026, 3, 1))[0][1] == 1000


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_rows_of_one_key_are_summed_but_a_repeated_row_is_refused(
    engine: Engine, history: ReportHistoryService
) -> None:
    by_country = (
        "day,imp_type_id,line_item_id,publisher_id,geo_country,imps\n"
        "2026-02-27,9,2,3,DE,10\n"
        "2026-02-27,9,2,3,FR,5\n"
    )
    with pytest.raises(ReportHistoryRefused) as refused:
        import_text(history, by_country + "2026-02-27,9,2,3,DE,10\n")
    [repeated] = refused.value.result.refused
    assert (repeated.line, repeated.field) == (4, "file") and "repeats line 2" in repeated.message
    result = import_text(history, by_country)
    assert (result.lines, result.rollup_rows, result.totals.imps) == (2, 1, 15)
