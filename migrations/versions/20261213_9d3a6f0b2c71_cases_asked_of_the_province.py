"""when reconciliation last asked the province about a case

`applications.province_checked_at`: reconciliation asked about the open cases quiet for an hour,
oldest `updated_at` first, 200 a pass; asking changes nothing about a case, so every pass asked
the same 200 and a newer case whose callback was lost was never asked. Candidates now rotate:
a case asked within the quiet period waits, the least recently asked go first. Nullable, empty
for everyone: every case counts as never asked. A downgrade drops the column.

Revision ID: 9d3a6f0b2c71
Revises: 7b4e2d9c1a68
Create Date: 2026-12-13 09:00:00
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "9d3a6f0b2c71"
down_revision = "7b4e2d9c1a68"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (a nullable column): no batch copy on SQLite of a table others reference.
    op.add_column(
        "applications", sa.Column("province_checked_at", core.db.UTCDateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("applications", "province_checked_at")
