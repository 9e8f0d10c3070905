"""applications: values reused from an earlier application keep the mask they were shown with

A new draft fills unbound fields from the citizen's latest submitted application. Values that
application showed masked (filled from the identity, the phone or shared data) were copied
without their mask, so the new draft showed them in full, to the citizen and to an app with
`applications.write`. The prefill now keeps the mask; this gives existing applications' reused
values the mask of the application they came from (provenance `source` "application",
`record_id` that application). Views already cached are re-rendered on the next change to the
application, at the latest on the next Beijing day (the cache's date stamp).

Revision ID: 7a3c1e5d9b20
Revises: 4115f800b96c
Create Date: 2026-12-06 09:40:00
"""

import json

import sqlalchemy as sa
from alembic import op

revision = '7a3c1e5d9b20'
down_revision = '4115f800b96c'
branch_labels = None
depends_on = None

APPLICATIONS = sa.table('applications', sa.column('id', sa.String), sa.column('provenance', sa.JSON))
BATCH = 500


def _loaded(value):
    return json.loads(value) if isinstance(value, str) else (value or {})


def upgrade() -> None:
    conn = op.get_bind()
    after = ''
    while True:
        rows = conn.execute(
            sa.select(APPLICATIONS.c.id, APPLICATIONS.c.provenance)
            .where(APPLICATIONS.c.id > after)
            .order_by(APPLICATIONS.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        for row in rows:
            provenance = _loaded(row.provenance)
            reused = {
                path: entry for path, entry in provenance.items()
                if isinstance(entry, dict) and entry.get('source') == 'application'
                and entry.get('record_id') and 'masked' not in entry
            }
            if not reused:
                continue
            changed = False
            for path, entry in reused.items():
                earlier = conn.execute(
                    sa.select(APPLICATIONS.c.provenance).where(APPLICATIONS.c.id == entry['record_id'])
                ).scalar()
                masked = (_loaded(earlier).get(path) or {}).get('masked')
                if masked is not None:
                    entry['masked'] = masked
                    changed = True
            if changed:
                conn.execute(
                    sa.update(APPLICATIONS).where(APPLICATIONS.c.id == row.id).values(provenance=provenance)
                )


def downgrade() -> None:
    """Nothing to undo: the masks only hide values the citizen was shown masked before."""
