"""original_id and original_code on every catalogue table

Objects imported from Microsoft Invest/Xandr keep the id and code they had there: a re-import
matches them by kind and original id, and users find them by either.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 20:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CATALOGUE_TABLES = (
    "advertisers",
    "line_items",
    "publishers",
    "placements",
    "payment_rules",
    "trackers",
)


def upgrade() -> None:
    for table in CATALOGUE_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("original_id", sa.BigInteger(), nullable=True))
            batch_op.add_column(sa.Column("original_code", sa.String(length=100), nullable=True))
            batch_op.create_index(
                batch_op.f(f"ix_{table}_original_id"), ["original_id"], unique=False
            )


def downgrade() -> None:
    for table in CATALOGUE_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_original_id"))
            batch_op.drop_column("original_code")
            batch_op.drop_column("original_id")
