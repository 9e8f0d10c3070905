"""complaint attachments indexed by file, so the orphan sweep keeps evidence whoever owns it

Revision ID: d4e5f6a7b8c9
Revises: c3d8e9f0a1b2
Create Date: 2026-12-05 11:30:00
"""

import json

import sqlalchemy as sa
from alembic import op


revision = 'd4e5f6a7b8c9'
down_revision = 'c3d8e9f0a1b2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    attachments = op.create_table(
        'complaint_attachments',
        sa.Column('complaint_id', sa.String(length=36), nullable=False),
        sa.Column('file_id', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ['complaint_id'], ['complaints.id'],
            name=op.f('fk_complaint_attachments_complaint_id_complaints'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['file_id'], ['application_files.id'], name=op.f('fk_complaint_attachments_file_id_application_files')
        ),
        sa.PrimaryKeyConstraint('complaint_id', 'file_id', name=op.f('pk_complaint_attachments')),
    )
    with op.batch_alter_table('complaint_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaint_attachments_file_id'), ['file_id'], unique=False)
    # Existing complaints: their attachments that still exist (the sweep may have taken some).
    conn = op.get_bind()
    pairs = []
    for complaint_id, listed in conn.execute(sa.text('SELECT id, attachments FROM complaints')):
        ids = json.loads(listed) if isinstance(listed, str) else (listed or [])
        pairs += [(complaint_id, f) for f in dict.fromkeys(ids)]
    wanted = sorted({f for _, f in pairs})
    present: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = sa.text('SELECT id FROM application_files WHERE id IN :ids').bindparams(
            sa.bindparam('ids', expanding=True)
        )
        present |= {row[0] for row in conn.execute(query, {'ids': chunk})}
    rows = [{'complaint_id': c, 'file_id': f} for c, f in pairs if f in present]
    if rows:
        op.bulk_insert(attachments, rows)

def downgrade() -> None:
    with op.batch_alter_table('complaint_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_attachments_file_id'))
    op.drop_table('complaint_attachments')
