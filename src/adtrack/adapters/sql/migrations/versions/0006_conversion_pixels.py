"""conversion pixels; a click tracker's query parameter for its click token

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversion_pixels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("advertiser_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("trigger_type", sa.String(length=8), nullable=False),
        sa.Column("post_click_window_minutes", sa.Integer(), nullable=False),
        sa.Column("post_view_window_minutes", sa.Integer(), nullable=False),
        sa.Column("min_minutes_per_conversion", sa.SmallInteger(), nullable=True),
        sa.Column("post_click_revenue_micros", sa.BigInteger(), nullable=False),
        sa.Column("post_view_revenue_micros", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("original_id", sa.BigInteger(), nullable=True),
        sa.Column("original_code", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["advertiser_id"],
            ["advertisers.id"],
            name=op.f("fk_conversion_pixels_advertiser_id_advertisers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversion_pixels")),
    )
    for column in ("advertiser_id", "code", "original_id"):
        op.create_index(
            op.f(f"ix_conversion_pixels_{column}"), "conversion_pixels", [column], unique=False
        )
    with op.batch_alter_table("trackers") as batch:
        batch.add_column(sa.Column("ssp_data_param", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trackers") as batch:
        batch.drop_column("ssp_data_param")
    for column in ("original_id", "code", "advertiser_id"):
        op.drop_index(op.f(f"ix_conversion_pixels_{column}"), table_name="conversion_pixels")
    op.drop_table("conversion_pixels")
