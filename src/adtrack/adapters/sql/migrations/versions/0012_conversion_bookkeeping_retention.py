"""conversion bookkeeping retention: the indexes its purge deletes by

The aggregator's conversion verdicts (``conversion_verdicts``) and the order ids they counted
(``conversion_orders``) are purged once past ``ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS``
(``services/retention.py``), the oldest verdicts a batch at a time: an index on the verdicts'
time finds them, one on the orders' event id finds the order ids they counted. No column is
added: a verdict's ``ts`` (the conversion's time) is what it is kept by, and an order id is kept
as long as the verdict of the conversion that counted it. Indexes a database already has (a
schema made from ``tables.py``) are left as they are.

Revision ID: 0012
Revises: 0011

Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_conversion_verdicts_ts", "conversion_verdicts", ["ts"]),
    ("ix_conversion_orders_event_id", "conversion_orders", ["event_id"]),
)


def _existing(table: str) -> set[str]:
    return {str(index["name"]) for index in sa.inspect(op.get_bind()).get_indexes(table)}


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        if name not in _existing(table):
            op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(_INDEXES):
        if name in _existing(table):
            op.drop_index(name, table_name=table)
