"""evaluation reasons and appeal reasons encrypted at rest, like complaint text

Citizens write names, numbers and addresses into a 差评's reason and an appeal; the existing
plain texts are encrypted with the configured active data key (DATA_KEYS / DATA_KEY_ACTIVE, the
same the app uses) and the plain columns dropped. Downgrade decrypts them back.

Revision ID: e5f6a7b8c9d0
Revises: d4e5f6a7b8c9
Create Date: 2026-12-05 19:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'e5f6a7b8c9d0'
down_revision = 'd4e5f6a7b8c9'
branch_labels = None
depends_on = None

# (table, plain column, encrypted column, purpose): domain/evaluations/service.py's purposes.
COLUMNS = (
    ('evaluations', 'reason', 'reason_enc', 'evaluation-reason'),
    ('rectification_tasks', 'appeal_reason', 'appeal_reason_enc', 'evaluation-appeal'),
)


def _encryptor():
    from config import load_config
    from core.crypto import Encryptor, parse_keys

    cfg = load_config()
    return Encryptor(parse_keys(cfg.DATA_KEYS), cfg.DATA_KEY_ACTIVE)


def _convert(source: str, target: str, table: str, change) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(f'SELECT id, {source} FROM {table} WHERE {source} IS NOT NULL')).all()
    update = sa.text(f'UPDATE {table} SET {target} = :value WHERE id = :id')
    for row_id, value in rows:
        conn.execute(update, {'id': row_id, 'value': change(value)})


# Plain ALTER TABLE, not batch mode: on SQLite a batch would copy `evaluations`, which
# rectification_tasks references, and foreign keys are enforced during migrations (SQLite ≥ 3.35
# drops a column in place).
def upgrade() -> None:
    enc = None
    for table, plain, sealed, purpose in COLUMNS:
        op.add_column(table, sa.Column(sealed, sa.Text(), nullable=True))
        enc = enc or _encryptor()
        _convert(plain, sealed, table, lambda v, p=purpose: enc.encrypt(v, purpose=p))
        op.drop_column(table, plain)


def downgrade() -> None:
    enc = None
    for table, plain, sealed, purpose in COLUMNS:
        op.add_column(table, sa.Column(plain, sa.Text(), nullable=True))
        enc = enc or _encryptor()
        _convert(sealed, plain, table, lambda v, p=purpose: enc.decrypt(v, purpose=p))
        op.drop_column(table, sealed)
