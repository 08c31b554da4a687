"""audience rollups: country, and device type / OS / browser, hourly and daily

Two families of rollups beside rollup_hourly / rollup_daily, written by the aggregator in the
same transaction: geography (country) and devices (device type, OS, browser), keyed by imp
type, advertiser and line item only so that a 90-day report reads few rows. Unknown values are
stored as "" (the key cannot hold null). Events counted before this revision are not in them.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-03 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
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
_FAMILIES = {"geo": ("country",), "device": ("device_type", "os", "browser")}


def _create(name: str, time_column: str, texts: tuple[str, ...]) -> None:
    op.create_table(
        name,
        sa.Column(time_column, sa.DateTime(timezone=True), nullable=False),
        sa.Column("imp_type", sa.SmallInteger(), nullable=False),
        sa.Column("advertiser_id", sa.Integer(), nullable=False),
        sa.Column("line_item_id", sa.Integer(), nullable=False),
        *(sa.Column(text, sa.String(length=_WIDTHS[text]), nullable=False) for text in texts),
        *(sa.Column(total, sa.BigInteger(), nullable=False) for total in _SUMS),
        sa.PrimaryKeyConstraint(
            time_column,
            "imp_type",
            "advertiser_id",
            "line_item_id",
            *texts,
            name=op.f(f"pk_{name}"),
        ),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    for family, texts in _FAMILIES.items():
        _create(f"rollup_{family}_hourly", "hour", texts)
        _create(f"rollup_{family}_daily", "day", texts)


def downgrade() -> None:
    for family in reversed(tuple(_FAMILIES)):
        op.drop_table(f"rollup_{family}_daily")
        op.drop_table(f"rollup_{family}_hourly")
