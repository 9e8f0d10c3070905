"""pauses counted in calendar days too

`applications.paused_days`: the calendar days the case's clock stood still (supplement requests,
special procedures), beside `paused_working_days`. A time limit in working days moves back by
the working days paused; one in natural days or months by the calendar days (a pause over the
Spring Festival holidays is 11 calendar days, 2 working days: the due date of a 30-natural-day
limit moved 2 days and the case showed overdue for 9 days it was not). Existing rows get 0: the
pauses already ended are not recorded day by day, and a pause still running counts in full
when it ends. A downgrade drops the column (natural-day limits go back to working days).

Revision ID: 7b4e2d9c1a68
Revises: 5e1d0c2b7a94
Create Date: 2026-12-12 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7b4e2d9c1a68"
down_revision = "5e1d0c2b7a94"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE with a constant default: no batch copy on SQLite of a table others reference.
    op.add_column("applications", sa.Column("paused_days", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("applications", "paused_days")
