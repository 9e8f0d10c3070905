"""evaluation reasons and appeal reasons encrypted at rest, like complaint text

Citizens write names, numbers and addresses into a 差评's reason and an appeal; the existing
plain texts are encrypted with the configured active data key (DATA_KEYS / DATA_KEY_ACTIVE, the
same the app uses) and the plain columns dropped. Downgrade decrypts them back.

Revision ID: e5f6a7b8c9d0
Revises: d4e5f6a7b8c9
Create Date: 2026-12-05 19:50:00
"""

import functools

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


def _move(*, seal: bool) -> None:
    """For each column pair: add the target column, fill it from the source (encrypted when
    sealing, else decrypted), drop the source. Plain ALTER TABLE, not batch mode: on SQLite a
    batch would copy `evaluations`, which rectification_tasks references, and foreign keys are
    enforced during migrations (SQLite 3.35 and later drop a column in place)."""
    conn = op.get_bind()
    enc = _encryptor()
    for table, plain, sealed, purpose in COLUMNS:
        source, target = (plain, sealed) if seal else (sealed, plain)
        change = functools.partial(enc.encrypt if seal else enc.decrypt, purpose=purpose)
        op.add_column(table, sa.Column(target, sa.Text(), nullable=True))
        rows = conn.execute(sa.text(f'SELECT id, {source} FROM {table} WHERE {source} IS NOT NULL')).all()
        update = sa.text(f'UPDATE {table} SET {target} = :value WHERE id = :id')
        for row_id, value in rows:
            conn.execute(update, {'id': row_id, 'value': change(value)})
        op.drop_column(table, source)


def upgrade() -> None:
    _move(seal=True)


def downgrade() -> None:
    _move(seal=False)
