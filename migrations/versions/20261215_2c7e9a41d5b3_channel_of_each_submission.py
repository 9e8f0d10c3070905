"""the channel a case was (re)submitted on

`applications.submitted_channel`: a draft resumes on any channel (started in the mini-program,
finished in the app), and the province's 申报渠道 is the channel of the submission, not of the
draft's creation, which the body sent until now. Set by each submission and resubmission;
nullable, empty for cases submitted before (the body then still names the creating channel). A
downgrade drops the column.

Revision ID: 2c7e9a41d5b3
Revises: 4f8b1c2e9a37
Create Date: 2026-12-15 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "2c7e9a41d5b3"
down_revision = "4f8b1c2e9a37"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (a nullable column): no batch copy on SQLite of a table others reference.
    op.add_column("applications", sa.Column("submitted_channel", sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column("applications", "submitted_channel")
