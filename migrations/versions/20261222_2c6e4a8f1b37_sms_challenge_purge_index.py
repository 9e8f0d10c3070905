"""the sweeper purges SMS challenges in batches, found by their expiry

The purge of expired SMS challenges was one DELETE over the whole backlog in one transaction;
it now deletes a batch at a time (`core.db.in_batches`), selecting each batch by `expires_at`,
which this index serves instead of a scan of every challenge per batch.

Revision ID: 2c6e4a8f1b37
Revises: 7f3a9c2e5d14
Create Date: 2026-12-22 09:00:00
"""

from alembic import op

revision = "2c6e4a8f1b37"
down_revision = "7f3a9c2e5d14"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sms_challenges_expires_at", "sms_challenges", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sms_challenges_expires_at", table_name="sms_challenges")
