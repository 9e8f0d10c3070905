"""the sweeper deletes login sessions a day after they ended

Nothing deleted `login_sessions` and `refresh_tokens` rows, so both grew with every login for
ever. The sweeper now deletes a session (and its refresh tokens) a day after it expired or was
revoked; it finds them by these two indexes rather than reading every session each pass.

Revision ID: 3b7d1e5a9c42
Revises: 9c4a7e2f6b18
Create Date: 2026-12-20 09:00:00
"""

from alembic import op

revision = "3b7d1e5a9c42"
down_revision = "9c4a7e2f6b18"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_login_sessions_expires_at", "login_sessions", ["expires_at"])
    op.create_index("ix_login_sessions_revoked_at", "login_sessions", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_login_sessions_revoked_at", table_name="login_sessions")
    op.drop_index("ix_login_sessions_expires_at", table_name="login_sessions")
