"""conversion cookies: an advertiser's choice to set a tracking-domain cookie on its clicks and
impressions, which its browser conversion pixels attribute from (off for every advertiser)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("advertisers") as batch:
        batch.add_column(
            sa.Column("conversion_cookies", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("advertisers") as batch:
        batch.drop_column("conversion_cookies")
