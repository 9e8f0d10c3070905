"""when an operator's pending TOTP secret was asked for

`operators.totp_pending_at`: the secret an operator who must replace an admin's password asks
for (POST /admin/v1/me/totp) now replaces the current one only within ADMIN_TOTP_PENDING_TTL;
before, a secret shown once and left on a screen stayed good for ever. Secrets already pending
have no time and count as expired: the operator asks for another. A downgrade drops the column.

Revision ID: 9c4a7e2f6b18
Revises: 5d2e8b7c1a94
Create Date: 2026-12-17 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "9c4a7e2f6b18"
down_revision = "5d2e8b7c1a94"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "operators", sa.Column("totp_pending_at", core.db.UTCDateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("operators", "totp_pending_at")
