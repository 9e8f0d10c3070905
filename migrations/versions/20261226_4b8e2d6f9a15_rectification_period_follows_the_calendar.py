"""a rectification's decision period follows calendar overrides entered after it was given

`decide_from` (the day the citizen's period to confirm or appeal started, not itself counted) and
`decide_days` (its working days) are kept with `decide_by`, so an override added or removed
later recounts it on the calendar as it is then. Periods given before this revision keep them
null: the response's day and the configured number are taken instead (a recount never moves
`decide_by` earlier, so a period the sweeper gave an older response from another day is left as
it was rather than shortened).

Revision ID: 4b8e2d6f9a15
Revises: 9d4b2f6a1c83
Create Date: 2026-12-26 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "4b8e2d6f9a15"
down_revision = "9d4b2f6a1c83"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rectification_tasks") as batch:
        batch.add_column(sa.Column("decide_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("decide_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rectification_tasks") as batch:
        batch.drop_column("decide_days")
        batch.drop_column("decide_from")
