"""citizens close their own accounts (注销)

A citizen may now close their account (POST /v1/me/closure, domain/closure). The account row
stays, because finished cases still name it as government records, but its personal data goes;
`closed_at` tells a closure by its owner from a merge or an operator's deletion (both leave
status `deleted` too) and says when it happened.

Revision ID: 6e1f3a8b2d57
Revises: 7c3e9a1d5b62
Create Date: 2026-12-21 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "6e1f3a8b2d57"
down_revision = "7c3e9a1d5b62"
branch_labels = None
depends_on = None


# Plain ALTER TABLE both ways (SQLite has DROP COLUMN since 3.35): no batch copy of a table so
# many others reference.
def upgrade() -> None:
    op.add_column("accounts", sa.Column("closed_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "closed_at")
