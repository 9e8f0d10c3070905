"""forwarding outbox: drop the two indexes that longer ones already lead with

ix_forwarding_outbox_application_id duplicates the first column of the unique index on
(application_id, kind, submission_version), and ix_forwarding_outbox_state the first column of
ix_forwarding_outbox_state_next (state, next_attempt_at): PostgreSQL and SQLite use the longer
index for any lookup by its first column. Each submission, resubmission and withdrawal wrote
both, for nothing.

Revision ID: f6a7b8c9d0e1
Revises: e5f6a7b8c9d0
Create Date: 2026-12-06 04:40:00
"""

from alembic import op

revision = 'f6a7b8c9d0e1'
down_revision = 'e5f6a7b8c9d0'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('forwarding_outbox') as batch:
        batch.drop_index('ix_forwarding_outbox_application_id')
        batch.drop_index('ix_forwarding_outbox_state')


def downgrade() -> None:
    with op.batch_alter_table('forwarding_outbox') as batch:
        batch.create_index('ix_forwarding_outbox_state', ['state'])
        batch.create_index('ix_forwarding_outbox_application_id', ['application_id'])
