"""operators tied to halls and departments; complaints and rectification tasks know their department

An admin may assign an operator hall ids (`operators.hall_ids`: check-in and in-person checks
only there) and catalog department codes (`operators.department_codes`: only those departments'
complaints and rectification tasks). Both are JSON lists; null or empty restricts nothing, so
every existing operator keeps working as before.

Complaints and rectification tasks get `department_code`, the catalog code of the department
handling the related case's (first) item as it was pinned; a task already kept the department's
name, which a rename would change. Existing rows are filled from their application's pinned item
version; a complaint without a case stays without a department (seen only by operators not tied
to departments).

Revision ID: 9c2f4e6a8b1d
Revises: 7a3c1e5d9b20
Create Date: 2026-12-07 10:00:00
"""

import json

import sqlalchemy as sa
from alembic import op

revision = '9c2f4e6a8b1d'
down_revision = '7a3c1e5d9b20'
branch_labels = None
depends_on = None

BATCH = 500
# (table, SELECT of (row id, the application's items) after a given id, in id order)
OWNED_BY_CASE = (
    (
        'complaints',
        'SELECT c.id, a.items FROM complaints c JOIN applications a ON a.id = c.application_id'
        ' WHERE c.id > :after ORDER BY c.id LIMIT :n',
    ),
    (
        'rectification_tasks',
        'SELECT t.id, a.items FROM rectification_tasks t JOIN evaluations e ON e.id = t.evaluation_id'
        ' JOIN applications a ON a.id = e.application_id WHERE t.id > :after ORDER BY t.id LIMIT :n',
    ),
)
DOCUMENT = sa.text(
    'SELECT v.document FROM service_item_versions v JOIN service_items i ON i.id = v.item_id'
    ' WHERE i.code = :code AND v.version = :version'
)


def _loaded(value):
    return json.loads(value) if isinstance(value, str) else value


def _fill_departments(conn) -> None:
    known: dict = {}

    def department(items):
        first = items[0] if isinstance(items, list) and items else None
        if not isinstance(first, dict) or 'code' not in first or 'version' not in first:
            return None
        key = (first['code'], first['version'])
        if key not in known:
            document = _loaded(conn.execute(DOCUMENT, {'code': key[0], 'version': key[1]}).scalar())
            code = document.get('department') if isinstance(document, dict) else None
            known[key] = code if isinstance(code, str) and code else None
        return known[key]

    for table, query in OWNED_BY_CASE:
        update = sa.text(f'UPDATE {table} SET department_code = :code WHERE id = :id')
        after = ''
        while True:
            rows = conn.execute(sa.text(query), {'after': after, 'n': BATCH}).all()
            if not rows:
                break
            for row_id, items in rows:
                code = department(_loaded(items))
                if code is not None:
                    conn.execute(update, {'id': row_id, 'code': code})
            after = rows[-1][0]


def upgrade() -> None:
    # Plain ALTER TABLE, not batch mode: on SQLite a batch would copy tables others reference
    # (operator_sessions, complaint_events, ...), with foreign keys enforced during migrations.
    op.add_column('operators', sa.Column('hall_ids', sa.JSON(), nullable=True))
    op.add_column('operators', sa.Column('department_codes', sa.JSON(), nullable=True))
    for table in ('complaints', 'rectification_tasks'):
        op.add_column(table, sa.Column('department_code', sa.String(length=32), nullable=True))
        op.create_index(op.f(f'ix_{table}_department_code'), table, ['department_code'], unique=False)
    _fill_departments(op.get_bind())


def downgrade() -> None:
    for table in ('rectification_tasks', 'complaints'):
        op.drop_index(op.f(f'ix_{table}_department_code'), table_name=table)
        op.drop_column(table, 'department_code')
    op.drop_column('operators', 'department_codes')
    op.drop_column('operators', 'hall_ids')
