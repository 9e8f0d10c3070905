"""a rectification response is confirmed or appealed by a date, else confirmed by default

`decide_by` is the citizen's last day to confirm or appeal the department's latest response;
the sweeper confirms a task left undecided after it (`closed_by` = 'deadline'). Tasks already
confirmed were confirmed by their citizens. Responses given before this revision get their
`decide_by` from the sweeper's next pass (counted in working days from when they were given).

Revision ID: 7c3e9a1d5b62
Revises: 2c6e4a8f1b37
Create Date: 2026-12-21 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7c3e9a1d5b62"
down_revision = "2c6e4a8f1b37"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rectification_tasks") as batch:
        batch.add_column(sa.Column("decide_by", sa.Date(), nullable=True))
        batch.add_column(sa.Column("closed_by", sa.String(length=16), nullable=True))
    op.execute("UPDATE rectification_tasks SET closed_by = 'citizen' WHERE status = 'confirmed'")


def downgrade() -> None:
    with op.batch_alter_table("rectification_tasks") as batch:
        batch.drop_column("closed_by")
        batch.drop_column("decide_by")
