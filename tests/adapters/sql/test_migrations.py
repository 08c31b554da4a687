"""Migrations: from an empty database to head on SQLite and PostgreSQL, matching ``tables.py``
exactly, and idempotent. ``db_url`` (conftest) is an empty database on each backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from adtrack.adapters.sql import tables
from adtrack.adapters.sql.db import alembic_config, current_revision, make_engine, upgrade


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


def schema_differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, tables.metadata))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_matches_the_schema(db_url: str) -> None:
    assert current_revision(db_url) is None
    assert schema_differences(db_url)  # the comparison does see a missing schema
    upgrade(db_url)
    assert current_revision(db_url) == head_revision(db_url)
    assert set(tables.metadata.tables) <= table_names(db_url)
    assert schema_differences(db_url) == []


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    upgrade(db_url)
    before = table_names(db_url)
    upgrade(db_url)
    assert current_revision(db_url) == head_revision(db_url)
    assert table_names(db_url) == before
    assert schema_differences(db_url) == []


def test_0003_original_ids_down_and_up_again(db_url: str) -> None:
    from alembic import command

    upgrade(db_url)
    command.downgrade(alembic_config(db_url), "0002")
    engine = make_engine(db_url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("trackers")}
    finally:
        engine.dispose()
    assert "original_id" not in columns and "original_code" not in columns
    upgrade(db_url)
    assert schema_differences(db_url) == []


def test_0007_viewability_down_and_up_again_keeps_the_rollups(db_url: str) -> None:
    """Rows rolled up before 0007 read 0 viewable and measured after it; going down drops
    the columns and the table, and up again matches the schema."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import text

    command.upgrade(alembic_config(db_url), "0006")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO rollup_daily (day, imp_type, tracker_id, advertiser_id, "
                    "line_item_id, publisher_id, placement_id, payment_rule_id, imps, clicks, "
                    "invalid_imps, invalid_clicks, media_cost_micros, booked_revenue_micros) "
                    "VALUES (:day, 9, 1, 1, 1, 1, 0, 0, 5, 0, 0, 0, 10, 20)"
                ),
                {"day": datetime(2026, 12, 1, tzinfo=UTC)},
            )
        upgrade(db_url)
        assert schema_differences(db_url) == []
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT imps, viewable_imps, view_measured_imps FROM rollup_daily")
            ).one()
        assert tuple(row) == (5, 0, 0)
        command.downgrade(alembic_config(db_url), "0006")
        columns = {c["name"] for c in inspect(engine).get_columns("rollup_daily")}
        assert "viewable_imps" not in columns and "view_measured_imps" not in columns
        assert "view_beacons_seen" not in table_names(db_url)
        geo = {c["name"] for c in inspect(engine).get_columns("rollup_geo_daily")}
        assert "viewable_imps" not in geo
    finally:
        engine.dispose()
    upgrade(db_url)
    assert schema_differences(db_url) == []


def test_0005_audience_rollups_down_and_up_again(db_url: str) -> None:
    from alembic import command

    audience = {"rollup_geo_hourly", "rollup_geo_daily", "rollup_device_hourly"}
    audience.add("rollup_device_daily")
    upgrade(db_url)
    assert audience <= table_names(db_url)
    command.downgrade(alembic_config(db_url), "0004")
    assert not audience & table_names(db_url)
    upgrade(db_url)
    assert audience <= table_names(db_url)
    assert schema_differences(db_url) == []


def test_0008_conversion_counts_keep_the_rollups_and_go_down_and_up_again(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import text

    command.upgrade(alembic_config(db_url), "0007")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:  # a rollup row from before the conversion counters
            conn.execute(
                text(
                    "INSERT INTO rollup_daily (day, imp_type, tracker_id, advertiser_id,"
                    " line_item_id, publisher_id, placement_id, payment_rule_id, imps, clicks,"
                    " invalid_imps, invalid_clicks, media_cost_micros, booked_revenue_micros)"
                    " VALUES ('2026-01-01 00:00:00+00:00', 9, 1, 1, 1, 1, 0, 0, 5, 0, 0, 0, 7, 9)"
                )
            )
        upgrade(db_url)
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT imps, conversions, conversion_revenue_micros FROM rollup_daily")
            ).one()
        assert tuple(row) == (5, 0, 0)
        assert schema_differences(db_url) == []
        command.downgrade(alembic_config(db_url), "0007")
        engine.dispose()
        assert {"conversion_verdicts", "conversion_orders"}.isdisjoint(table_names(db_url))
        columns = {c["name"] for c in inspect(engine).get_columns("rollup_daily")}
        assert "conversions" not in columns
        upgrade(db_url)
        assert schema_differences(db_url) == []
    finally:
        engine.dispose()


def test_0009_monthly_audience_rollups_are_filled_from_the_daily_rows(db_url: str) -> None:
    """The monthly line-item rollups start as the sums of the daily rows per UTC month; going
    down drops them, and up again matches the schema."""
    from datetime import UTC, datetime, timedelta

    from alembic import command
    from sqlalchemy import select

    from adtrack.domain.utc import as_utc

    command.upgrade(alembic_config(db_url), "0008")
    sums = dict.fromkeys(tables.ROLLUP_SUMS, 0)
    geo = tables.rollup_geo_line_item_daily
    device = tables.rollup_device_line_item_daily
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            for day, imps in ((31, 2), (32, 3), (37, 3)):  # January 31, February 1 and 6
                conn.execute(
                    geo.insert(),
                    {
                        "day": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day - 1),
                        "imp_type": 9,
                        "advertiser_id": 1,
                        "line_item_id": 7,
                        "country": "NL",
                        **sums,
                        "imps": imps,
                        "media_cost_micros": 10 * imps,
                    },
                )
            conn.execute(
                device.insert(),
                {
                    "day": datetime(2026, 3, 4, tzinfo=UTC),
                    "imp_type": 10,
                    "advertiser_id": 1,
                    "line_item_id": 7,
                    "device_type": "mobile",
                    "os": "iOS",
                    "browser": "Mobile Safari",
                    **sums,
                    "clicks": 4,
                },
            )
        upgrade(db_url)
        assert schema_differences(db_url) == []
        monthly_geo = tables.rollup_geo_line_item_monthly.c
        monthly_device = tables.rollup_device_line_item_monthly.c
        with engine.connect() as conn:
            geo_rows = conn.execute(
                select(
                    monthly_geo.month,
                    monthly_geo.line_item_id,
                    monthly_geo.country,
                    monthly_geo.imps,
                    monthly_geo.media_cost_micros,
                ).order_by(monthly_geo.month)
            ).all()
            device_rows = conn.execute(
                select(monthly_device.month, monthly_device.os, monthly_device.clicks)
            ).all()
        assert [(as_utc(r[0]), *r[1:]) for r in geo_rows] == [
            (datetime(2026, 1, 1, tzinfo=UTC), 7, "NL", 2, 20),
            (datetime(2026, 2, 1, tzinfo=UTC), 7, "NL", 6, 60),
        ]
        assert [(as_utc(r[0]), *r[1:]) for r in device_rows] == [
            (datetime(2026, 3, 1, tzinfo=UTC), "iOS", 4)
        ]
        command.downgrade(alembic_config(db_url), "0008")
        monthly = {"rollup_geo_line_item_monthly", "rollup_device_line_item_monthly"}
        assert not monthly & table_names(db_url)
    finally:
        engine.dispose()
    upgrade(db_url)
    assert schema_differences(db_url) == []


def test_0010_conversion_pixel_rollups_down_and_up_again(db_url: str) -> None:
    """0010 adds the conversion pixel rollups, empty; going down to 0009 drops them, and up
    again matches the schema."""
    from alembic import command

    pixel = {"rollup_conversion_pixel_hourly", "rollup_conversion_pixel_daily"}
    script = ScriptDirectory.from_config(alembic_config(db_url))
    revision = script.get_revision("0010")
    assert revision is not None and revision.down_revision == "0009"
    upgrade(db_url)
    assert pixel <= table_names(db_url)
    command.downgrade(alembic_config(db_url), "0009")
    assert not pixel & table_names(db_url)
    assert "rollup_geo_line_item_monthly" in table_names(db_url)  # 0009's stay
    upgrade(db_url)
    assert pixel <= table_names(db_url)


def test_0012_conversion_bookkeeping_indexes_down_and_up_again(db_url: str) -> None:
    from alembic import command

    upgrade(db_url)
    command.downgrade(alembic_config(db_url), "0011")
    engine = make_engine(db_url)
    try:
        names = {
            index["name"]
            for table in ("conversion_verdicts", "conversion_orders")
            for index in inspect(engine).get_indexes(table)
        }
    finally:
        engine.dispose()
    assert not names & {"ix_conversion_verdicts_ts", "ix_conversion_orders_event_id"}
    assert current_revision(db_url) == "0011"
    upgrade(db_url)
    assert current_revision(db_url) == "0012"
    assert schema_differences(db_url) == []
