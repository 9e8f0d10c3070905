"""who asked for each SMS code, and the wrong codes others typed for it

`sms_challenges.requested_by` (keyed hash of the asking address) and `stray_attempts`: a
stranger who knows a citizen's number no longer burns the code the citizen asked for, nor
replaces it by asking for one of their own; their wrong codes count in `stray_attempts`
(docs/identity.md, "SMS login and strangers"). Codes asked for before have no asker and behave
as before until they expire (five minutes). A downgrade drops both columns.

Revision ID: 5d2e8b7c1a94
Revises: 5e2b8d4c1f60
Create Date: 2026-12-17 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "5d2e8b7c1a94"
down_revision = "5e2b8d4c1f60"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sms_challenges", sa.Column("requested_by", sa.String(128), nullable=True))
    op.add_column(
        "sms_challenges", sa.Column("stray_attempts", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("sms_challenges", "stray_attempts")
    op.drop_column("sms_challenges", "requested_by")
