"""one channel slot per account

An account holds at most one phone and at most one WeChat identity per mini-program (or open
platform): two under one account would make login and merges ambiguous. Enforced by the
database so concurrent bindings and merges cannot break it.

Revision ID: 3b7f0c1d9a24
Revises: 6e6535aeae7b
Create Date: 2026-12-02 01:40:00
"""

from alembic import op


revision = '3b7f0c1d9a24'
down_revision = '6e6535aeae7b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channel_identities', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_channel_identities_account_slot', ['account_id', 'kind', 'issuer'])


def downgrade() -> None:
    with op.batch_alter_table('channel_identities', schema=None) as batch_op:
        batch_op.drop_constraint('uq_channel_identities_account_slot', type_='unique')
