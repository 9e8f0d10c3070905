"""a rectification's deadline for the department follows calendar overrides entered later

`due_from` (the day the round was opened or appealed, not itself counted) and `due_days` (its
working days) are kept with `due_on`, so an override added or removed later recounts it, as a
case's due date. Rounds opened before this revision keep them null: a first round is recounted
from its creation day with the configured number; an appealed round's day is not known here,
and its deadline stays as it was counted.

Revision ID: 5c9f3e7a0b26
Revises: 4b8e2d6f9a15
Create Date: 2026-12-27 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "5c9f3e7a0b26"
down_revision = "4b8e2d6f9a15"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rectification_tasks") as batch:
        batch.add_column(sa.Column("due_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("due_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rectification_tasks") as batch:
        batch.drop_column("due_days")
        batch.drop_column("due_from")
