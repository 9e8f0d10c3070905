"""province callback nonces in the database

Revision ID: a41c0e7d9b52
Revises: 35537c6a801d
Create Date: 2026-12-04 18:00:00
"""

from alembic import op
import sqlalchemy as sa
import core.db


revision = 'a41c0e7d9b52'
down_revision = '35537c6a801d'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('province_nonces',
    sa.Column('profile', sa.String(length=32), nullable=False),
    sa.Column('nonce', sa.String(length=32), nullable=False),
    sa.Column('seen_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('profile', 'nonce', name=op.f('pk_province_nonces'))
    )
    op.create_index(op.f('ix_province_nonces_seen_at'), 'province_nonces', ['seen_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_province_nonces_seen_at'), table_name='province_nonces')
    op.drop_table('province_nonces')
