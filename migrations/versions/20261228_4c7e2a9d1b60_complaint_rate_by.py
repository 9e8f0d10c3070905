"""an answered complaint left unrated is closed after its rating period

`rate_by` is the last Beijing day on which the citizen may rate the current answer (inclusive),
set when the answer is given (`COMPLAINT_RATE_DAYS` calendar days on), cleared when it is
rated; the sweeper closes a complaint still unrated after it. Indexed: the sweeper reads only the
complaints past it. Complaints answered before this revision keep it null here (the period is a
setting a migration cannot read) and the sweeper gives each one its period, counted from the day
it first sees it.

Revision ID: 4c7e2a9d1b60
Revises: 5c9f3e7a0b26
Create Date: 2026-12-28 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "4c7e2a9d1b60"
down_revision = "5c9f3e7a0b26"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.add_column(sa.Column("rate_by", sa.Date(), nullable=True))
        batch.create_index("ix_complaints_rate_by", ["rate_by"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.drop_index("ix_complaints_rate_by")
        batch.drop_column("rate_by")
