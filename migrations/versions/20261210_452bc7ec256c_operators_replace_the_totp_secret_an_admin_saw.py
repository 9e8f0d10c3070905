"""operators replace the TOTP secret an admin saw

`operators.totp_pending_enc`: a TOTP secret an operator whose credentials an admin chose
(`must_change_password`) asked for with `POST /admin/v1/me/totp`, encrypted like
`totp_secret_enc`. The password change that clears the flag proves a code of it and makes it the
operator's secret. Nullable, empty for everyone: nothing to backfill. A downgrade drops the
column and so forgets pending secrets (the operator asks for a new one).

Revision ID: 452bc7ec256c
Revises: 953dcd90bb4f
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "452bc7ec256c"
down_revision = "953dcd90bb4f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (a nullable column): no batch copy on SQLite of a table others reference.
    op.add_column("operators", sa.Column("totp_pending_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("operators", "totp_pending_enc")
