"""report history imported from the network analytics report

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SUMS = (
    "imps",
    "clicks",
    "invalid_imps",
    "invalid_clicks",
    "media_cost_micros",
    "booked_revenue_micros",
)
_KEYS = (
    ("imp_type", sa.SmallInteger()),
    ("advertiser_id", sa.Integer()),
    ("line_item_id", sa.Integer()),
    ("publisher_id", sa.Integer()),
    ("placement_id", sa.Integer()),
    ("payment_rule_id", sa.Integer()),
)


def upgrade() -> None:
    op.create_table(
        "report_history_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("granularity", sa.String(length=8), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("first_hour", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_hour", sa.DateTime(timezone=True), nullable=True),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _SUMS),
        sa.Column("imported_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_history_imports")),
        sa.UniqueConstraint("sha256", name=op.f("uq_report_history_imports_sha256")),
    )
    op.create_table(
        "report_history_rows",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, kind, nullable=False) for name, kind in _KEYS),
        sa.Column("covers_until", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _SUMS),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["report_history_imports.id"],
            name=op.f("fk_report_history_rows_import_id_report_history_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "import_id", "hour", *(name for name, _ in _KEYS), name=op.f("pk_report_history_rows")
        ),
    )
    op.create_index(
        "ix_report_history_rows_line_item_hour",
        "report_history_rows",
        ["line_item_id", "hour"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_report_history_rows_line_item_hour", table_name="report_history_rows")
    op.drop_table("report_history_rows")
    op.drop_table("report_history_imports")
