"""conversions: the rollups' conversion counters, and what the aggregator decided of each
attributed conversion (its verdict, and the order ids counted per pixel)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COUNTERS = (
    "conversions",
    "post_click_conversions",
    "post_view_conversions",
    "conversion_revenue_micros",
)
# Every table that carries the rollups' sums (tables.ROLLUP_SUMS), where it exists: the audience
# rollups come with their own migration, which may run before or after this one.
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
_COVERING = "ix_rollup_daily_day_line_item"  # holds every sum: rebuilt with the new ones
_HIT_SUMS = (
    "imps",
    "clicks",
    "invalid_imps",
    "invalid_clicks",
    "media_cost_micros",
    "booked_revenue_micros",
)
_VIEW_SUMS = ("viewable_imps", "view_measured_imps")  # (0007)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for table in _TABLES:
        if table not in existing:
            continue
        for name in _COUNTERS:
            # (existing rows: nothing was converted before)
            op.add_column(
                table, sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            )
    op.drop_index(_COVERING, table_name="rollup_daily")
    # (in the order of the sums, Counters': the hits', the conversions', the views')
    op.create_index(
        _COVERING,
        "rollup_daily",
        ["day", "line_item_id", *_HIT_SUMS, *_COUNTERS, *_VIEW_SUMS],
        unique=False,
    )
    op.create_table(
        "conversion_verdicts",
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("conversion_pixel_id", sa.Integer(), nullable=False),
        sa.Column("source_event_id", sa.String(length=40), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_conversion_verdicts")),
    )
    op.create_index(
        "ix_conversion_verdicts_pixel_click",
        "conversion_verdicts",
        ["conversion_pixel_id", "source_event_id"],
        unique=False,
    )
    op.create_table(
        "conversion_orders",
        sa.Column("conversion_pixel_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint(
            "conversion_pixel_id", "order_id", name=op.f("pk_conversion_orders")
        ),
    )


def downgrade() -> None:
    op.drop_table("conversion_orders")
    op.drop_index("ix_conversion_verdicts_pixel_click", table_name="conversion_verdicts")
    op.drop_table("conversion_verdicts")
    op.drop_index(_COVERING, table_name="rollup_daily")
    op.create_index(
        _COVERING, "rollup_daily", ["day", "line_item_id", *_HIT_SUMS, *_VIEW_SUMS], unique=False
    )
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for table in _TABLES:
        if table in existing:
            for name in _COUNTERS:
                op.drop_column(table, name)
