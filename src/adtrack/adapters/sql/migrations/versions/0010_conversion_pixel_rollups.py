"""conversion pixel rollups: the counted conversions by conversion pixel, hourly and daily

Keyed by the time bucket, the pixel and the ids of what a conversion is attributed to (tracker,
advertiser, line item, publisher, placement or 0, payment rule or 0), with the conversion
counters only. The aggregator writes them from this revision on, in the same transaction as the
other rollups. They start empty: the rollups without a pixel cannot be split by pixel, so the
conversions counted before the upgrade are not in reports by conversion pixel
(docs/conversions.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The key and sums at this revision (adapters/sql/tables.py).
_KEY = (
    "conversion_pixel_id",
    "tracker_id",
    "advertiser_id",
    "line_item_id",
    "publisher_id",
    "placement_id",
    "payment_rule_id",
)
_SUMS = (
    "conversions",
    "post_click_conversions",
    "post_view_conversions",
    "conversion_revenue_micros",
)
_TABLES = {"rollup_conversion_pixel_hourly": "hour", "rollup_conversion_pixel_daily": "day"}


def upgrade() -> None:
    for name, time_column in _TABLES.items():
        op.create_table(
            name,
            sa.Column(time_column, sa.DateTime(timezone=True), nullable=False),
            *(sa.Column(column, sa.Integer(), nullable=False) for column in _KEY),
            *(sa.Column(total, sa.BigInteger(), nullable=False) for total in _SUMS),
            sa.PrimaryKeyConstraint(time_column, *_KEY, name=op.f(f"pk_{name}")),
            sqlite_with_rowid=False,
        )


def downgrade() -> None:
    for name in reversed(tuple(_TABLES)):
        op.drop_table(name)
