"""viewability: the rollups' viewable and measured impressions, and the beacons counted

Revision ID: 0007
Revises: 0006

(It adds its columns to the audience rollups of 0005 too.)
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COUNTERS = ("viewable_imps", "view_measured_imps")
# Every table that carries the rollups' sums (tables.ROLLUP_SUMS).
_TABLES = (
    "rollup_hourly",
    "rollup_daily",
    "report_history_imports",
    "report_history_rows",
    "rollup_geo_hourly",
    "rollup_geo_daily",
    "rollup_geo_line_item_hourly",
    "rollup_geo_line_item_daily",
    "rollup_device_hourly",
    "rollup_device_daily",
    "rollup_device_line_item_hourly",
    "rollup_device_line_item_daily",
)
_SUMS_BEFORE = (
    "imps",
    "clicks",
    "invalid_imps",
    "invalid_clicks",
    "media_cost_micros",
    "booked_revenue_micros",
)
_COVERING = "ix_rollup_daily_day_line_item"  # holds every sum: rebuilt with the new ones


def upgrade() -> None:
    for table in _TABLES:
        for name in _COUNTERS:
            # (existing rows: nothing was measured before)
            op.add_column(
                table, sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            )
    op.drop_index(_COVERING, table_name="rollup_daily")
    op.create_index(
        _COVERING,
        "rollup_daily",
        ["day", "line_item_id", *_SUMS_BEFORE, *_COUNTERS],
        unique=False,
    )
    op.create_table(
        "view_beacons_seen",
        sa.Column("impression_event_id", sa.String(length=40), nullable=False),
        sa.Column("view_state", sa.String(length=16), nullable=False),
        sa.Column("impression_day", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "impression_event_id", "view_state", name=op.f("pk_view_beacons_seen")
        ),
    )
    op.create_index(
        op.f("ix_view_beacons_seen_impression_day"),
        "view_beacons_seen",
        ["impression_day"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_view_beacons_seen_impression_day"), table_name="view_beacons_seen")
    op.drop_table("view_beacons_seen")
    op.drop_index(_COVERING, table_name="rollup_daily")
    op.create_index(_COVERING, "rollup_daily", ["day", "line_item_id", *_SUMS_BEFORE], unique=False)
    for table in _TABLES:
        for name in _COUNTERS:
            op.drop_column(table, name)
