"""in-person checks keep the hall's id

`identity_verifications.hall_id`: the hall (`halls.id`) an officer named by id for an in-person
check, next to its name in `hall` as recorded at the time. Null for every other method, for
checks made before this column existed and for the free-text hall of earlier clients. No foreign
key: the record keeps what was checked even if a hall is later removed.

Revision ID: b3d5f7a9c1e2
Revises: 9c2f4e6a8b1d
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "b3d5f7a9c1e2"
down_revision = "9c2f4e6a8b1d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (a nullable column): no batch copy of a table others reference on SQLite.
    op.add_column("identity_verifications", sa.Column("hall_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    op.drop_column("identity_verifications", "hall_id")
