"""a data-sharing grant outlives a deleted draft until its exchange authorisation is revoked

Revision ID: c3d8e9f0a1b2
Revises: b7c1e2d3f4a5
Create Date: 2026-12-05 08:00:00
"""

import sqlalchemy as sa
from alembic import op


revision = 'c3d8e9f0a1b2'
down_revision = 'b7c1e2d3f4a5'
branch_labels = None
depends_on = None

FK = 'fk_sharing_grants_application_id_applications'


def upgrade() -> None:
    with op.batch_alter_table('sharing_grants', schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_='foreignkey')
        batch_op.alter_column('application_id', existing_type=sa.String(length=36), nullable=True)
        batch_op.create_foreign_key(FK, 'applications', ['application_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    # An unlinked grant that is not yet revoked is still open at the exchange; deleting it here
    # would lose the only record of it. The purge (`purge_finished`) revokes them first.
    conn = op.get_bind()
    open_grants = conn.execute(
        sa.text('SELECT count(*) FROM sharing_grants WHERE application_id IS NULL AND revoked_at IS NULL')
    ).scalar()
    if open_grants:
        raise RuntimeError(
            f'{open_grants} data-sharing grant(s) of deleted drafts are still open at the exchange; '
            'run the draft purge (it revokes them) before downgrading'
        )
    op.execute('DELETE FROM sharing_grants WHERE application_id IS NULL')
    with op.batch_alter_table('sharing_grants', schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_='foreignkey')
        batch_op.alter_column('application_id', existing_type=sa.String(length=36), nullable=False)
        batch_op.create_foreign_key(FK, 'applications', ['application_id'], ['id'], ondelete='CASCADE')
