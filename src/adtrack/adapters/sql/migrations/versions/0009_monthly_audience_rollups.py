"""monthly audience rollups by line item: country, and device type / OS / browser

The line-item levels of the audience rollups (0005) also by UTC month (``month``: the first of
the month, 00:00 UTC), written by the aggregator in the same transaction as the hourly and daily
rows, so that a report of every line item over whole months reads one row per key and month.
Filled here from the daily rows already counted.

Revision ID: 0009
Revises: 0008

Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
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
    "conversions",
    "post_click_conversions",
    "post_view_conversions",
    "conversion_revenue_micros",
    "viewable_imps",
    "view_measured_imps",
)
_WIDTHS = {"country": 2, "device_type": 16, "os": 64, "browser": 64}
_LINE_ITEM = ("imp_type", "advertiser_id", "line_item_id")
_TABLES = {
    "rollup_geo_line_item": (*_LINE_ITEM, "country"),
    "rollup_device_line_item": (*_LINE_ITEM, "device_type", "os", "browser"),
}


def _column(name: str) -> sa.Column[object]:
    if name in _WIDTHS:
        return sa.Column(name, sa.String(length=_WIDTHS[name]), nullable=False)
    return sa.Column(
        name, sa.SmallInteger() if name == "imp_type" else sa.Integer(), nullable=False
    )


def _month_of_day() -> str:
    """SQL for the UTC month start of the daily row's ``day``, stored as the column stores it."""
    if op.get_bind().dialect.name == "postgresql":
        return "date_trunc('month', day AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    # SQLite keeps DateTime as 'YYYY-MM-DD HH:MM:SS.ffffff' text (UTC here).
    return "substr(day, 1, 8) || '01 00:00:00.000000'"


def upgrade() -> None:
    month = _month_of_day()
    for prefix, key in _TABLES.items():
        name = f"{prefix}_monthly"
        op.create_table(
            name,
            sa.Column("month", sa.DateTime(timezone=True), nullable=False),
            *(_column(column) for column in key),
            *(sa.Column(total, sa.BigInteger(), nullable=False) for total in _SUMS),
            sa.PrimaryKeyConstraint("month", *key, name=op.f(f"pk_{name}")),
            sqlite_with_rowid=False,
        )
        columns = ", ".join(key)
        sums = ", ".join(f"sum({total})" for total in _SUMS)
        op.execute(
            f"INSERT INTO {name} (month, {columns}, {', '.join(_SUMS)}) "
            f"SELECT {month} AS m, {columns}, {sums} FROM {prefix}_daily "
            f"GROUP BY m, {columns}"
        )


def downgrade() -> None:
    for prefix in reversed(tuple(_TABLES)):
        op.drop_table(f"{prefix}_monthly")
