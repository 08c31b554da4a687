"""sum_bigint: an exact bigint sum with a bigint running total (PostgreSQL)

PostgreSQL's ``sum(bigint)`` returns ``numeric`` and keeps a 128-bit or numeric running total
per group behind a pointer; a report's hash aggregate of tens of thousands of groups with six
such sums outgrows ``work_mem`` and spills to disk. ``sum_bigint`` adds with ``int8pl`` (the
``+`` of bigint, which raises "bigint out of range" on overflow instead of wrapping), so each
total is a plain 8-byte value, exact, and never silently wrong. SQLite's ``sum()`` of integers
already works this way (it raises "integer overflow").

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 15:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE AGGREGATE sum_bigint(bigint) "
            "(SFUNC = int8pl, STYPE = bigint, COMBINEFUNC = int8pl, PARALLEL = SAFE)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP AGGREGATE sum_bigint(bigint)")
