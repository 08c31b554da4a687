"""audience rollups: country, and device type / OS / browser, hourly and daily

Two families of rollups beside rollup_hourly / rollup_daily, written by the aggregator in the
same transaction: geography (country) and devices (device type, OS, browser), each at the
network level (imp type and the audience columns) and by line item (imp type, advertiser, line
item and the audience columns), so that a 90-day report reads few rows. Unknown values are
stored as "" (the key cannot hold null). Events counted before this revision are not in them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The rollup sums at this revision (domain/rollup_counters.py Counters).
_SUMS = (
    "imps",
    "clicks",
    "invalid_imps",
    "invalid_clicks",
    "media_cost_micros",
    "booked_revenue_micros",
)
_WIDTHS = {"country": 2, "device_type": 16, "os": 64, "browser": 64}
_LINE_ITEM = ("advertiser_id", "line_item_id")
_TABLES = {
    "rollup_geo": ("imp_type", "country"),
    "rollup_geo_line_item": ("imp_type", *_LINE_ITEM, "country"),
    "rollup_device": ("imp_type", "device_type", "os", "browser"),
    "rollup_device_line_item": ("imp_type", *_LINE_ITEM, "device_type", "os", "browser"),
}


def _column(name: str) -> sa.Column[object]:
    if name in _WIDTHS:
        return sa.Column(name, sa.String(length=_WIDTHS[name]), nullable=False)
    return sa.Column(
        name, sa.SmallInteger() if name == "imp_type" else sa.Integer(), nullable=False
    )


def _create(name: str, time_column: str, key: tuple[str, ...]) -> None:
    op.create_table(
        name,
        sa.Column(time_column, sa.DateTime(timezone=True), nullable=False),
        *(_column(column) for column in key),
        *(sa.Column(total, sa.BigInteger(), nullable=False) for total in _SUMS),
        sa.PrimaryKeyConstraint(time_column, *key, name=op.f(f"pk_{name}")),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    for prefix, key in _TABLES.items():
        _create(f"{prefix}_hourly", "hour", key)
        _create(f"{prefix}_daily", "day", key)
    for prefix in ("rollup_geo_line_item", "rollup_device_line_item"):
        op.create_index(
            f"ix_{prefix}_daily_line_item_day", f"{prefix}_daily", ["line_item_id", "day"]
        )


def downgrade() -> None:
    for prefix in ("rollup_geo_line_item", "rollup_device_line_item"):
        op.drop_index(f"ix_{prefix}_daily_line_item_day", table_name=f"{prefix}_daily")
    for prefix in reversed(tuple(_TABLES)):
        op.drop_table(f"{prefix}_daily")
        op.drop_table(f"{prefix}_hourly")
