"""the phone's list of applications pages by creation time

`GET /v1/applications` ordered by `updated_at`: a case that changed while the citizen paged
(an autosave on the other device, the department's stage) moved ahead of the cursor and was
missing from the pages that followed. It now orders by `created_at`, which never changes; the
index on (account_id, updated_at, id) served that list alone and is replaced by one on
(account_id, created_at, id). A downgrade restores the old index.

Revision ID: 5e2b8d4c1f60
Revises: 8a1f3c5e7b20
Create Date: 2026-12-17 09:00:00
"""

from alembic import op

revision = "5e2b8d4c1f60"
down_revision = "8a1f3c5e7b20"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_applications_account_created", "applications", ["account_id", "created_at", "id"])
    op.drop_index("ix_applications_account_updated", table_name="applications")


def downgrade() -> None:
    op.create_index("ix_applications_account_updated", "applications", ["account_id", "updated_at", "id"])
    op.drop_index("ix_applications_account_created", table_name="applications")
