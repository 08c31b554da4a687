"""conversion bookkeeping retention: the indexes its purge deletes by

The aggregator's conversion verdicts (``conversion_verdicts``) and the order ids they counted
(``conversion_orders``) are purged once past ``ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS``
(``services/retention.py``), the oldest verdicts a batch at a time: an index on the verdicts'
time finds them, one on the orders' event id finds the order ids they counted. No column is
added: a verdict's ``ts`` (the conversion's time) is what it is kept by, and an order id is kept
as long as the verdict of the conversion that counted it. Indexes a database already has (a
schema made from ``tables.py``) are left as they are.

Revision ids are no longer four digits from here on: Alembic's ``alembic_version.version_num``
(``VARCHAR(32)``) is widened to 64 characters first, on PostgreSQL (SQLite does not hold a
text to its declared length), so that this revision's id fits when Alembic records it at the end
of the same transaction. It stays wide on the way down.

Revision ID: 0012_conversion_bookkeeping_retention
Revises: 0009

Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_conversion_bookkeeping_retention"
down_revision = "0009"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_conversion_verdicts_ts", "conversion_verdicts", ["ts"]),
    ("ix_conversion_orders_event_id", "conversion_orders", ["event_id"]),
)


def _existing(table: str) -> set[str]:
    return {str(index["name"]) for index in sa.inspect(op.get_bind()).get_indexes(table)}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "alembic_version",
            "version_num",
            type_=sa.String(64),
            existing_type=sa.String(32),
            existing_nullable=False,
        )
    for name, table, columns in _INDEXES:
        if name not in _existing(table):
            op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(_INDEXES):
        if name in _existing(table):
            op.drop_index(name, table_name=table)
