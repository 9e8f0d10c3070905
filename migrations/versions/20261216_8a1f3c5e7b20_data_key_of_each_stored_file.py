"""the data key each stored file is encrypted under

`application_files.blob_key_id`: `keys reencrypt-data` now re-encrypts uploaded files in blob
storage too, and with the key id on the row a re-run fetches only the blobs still under an older
key instead of every blob again. Nullable: files stored before are read once to learn it. A
downgrade drops the column.

Revision ID: 8a1f3c5e7b20
Revises: 2c7e9a41d5b3
Create Date: 2026-12-16 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "8a1f3c5e7b20"
down_revision = "2c7e9a41d5b3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (a nullable column): no batch copy on SQLite of a table others reference.
    op.add_column("application_files", sa.Column("blob_key_id", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("application_files", "blob_key_id")
