"""the citizen is reminded before a rectification response is confirmed by default

`decide_reminded_round` is the round (`rounds`) whose response the citizen was last reminded to
confirm or appeal, `RECTIFY_REMIND_WORKING_DAYS_BEFORE` working days before its `decide_by`:
one reminder per round, a new response after an appeal gets its own. Null: never reminded.

`remind_on` (indexed) is the day the reminder is due from, set with `decide_by`, so the sweeper
reads only the tasks to remind. It is counted on the case region's working-day calendar, which a
migration cannot read: responses awaiting a decision at this revision keep it null here and the
sweeper counts it the first time it sees them (once each, in bounded batches).

Revision ID: 9d4b2f6a1c83
Revises: 6e1f3a8b2d57
Create Date: 2026-12-25 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "9d4b2f6a1c83"
down_revision = "6e1f3a8b2d57"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rectification_tasks") as batch:
        batch.add_column(sa.Column("decide_reminded_round", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("remind_on", sa.Date(), nullable=True))
        batch.create_index("ix_rectification_tasks_remind_on", ["remind_on"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rectification_tasks") as batch:
        batch.drop_index("ix_rectification_tasks_remind_on")
        batch.drop_column("remind_on")
        batch.drop_column("decide_reminded_round")
