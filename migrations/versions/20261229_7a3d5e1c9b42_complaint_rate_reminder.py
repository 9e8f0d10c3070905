"""the citizen is reminded before an answered complaint's rating period ends

`rate_reminded_at` is when the citizen was reminded to rate the current answer (once an answer
round: the sweeper sends the reminder COMPLAINT_RATE_REMIND_DAYS_BEFORE days before `rate_by`
and keeps the time here, in the same transaction as the notice); cleared with `rate_by` when a
new answer is given or the answer is rated. Not indexed: the sweeper reads the complaints by
`rate_by` (indexed) and this narrows those few. Answers given before this revision are reminded
like any other, from their reminder day.

Revision ID: 7a3d5e1c9b42
Revises: 4c7e2a9d1b60
Create Date: 2026-12-29 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7a3d5e1c9b42"
down_revision = "4c7e2a9d1b60"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.add_column(sa.Column("rate_reminded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("rate_reminded_at")
