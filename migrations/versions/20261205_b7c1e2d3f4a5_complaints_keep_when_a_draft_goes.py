"""a complaint outlives the draft it named: the link is cleared when the draft is deleted

Revision ID: b7c1e2d3f4a5
Revises: a41c0e7d9b52
Create Date: 2026-12-05 05:00:00
"""

from alembic import op


revision = 'b7c1e2d3f4a5'
down_revision = 'a41c0e7d9b52'
branch_labels = None
depends_on = None

FK = 'fk_complaints_application_id_applications'


def upgrade() -> None:
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_='foreignkey')
        batch_op.create_foreign_key(FK, 'applications', ['application_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_='foreignkey')
        batch_op.create_foreign_key(FK, 'applications', ['application_id'], ['id'])
