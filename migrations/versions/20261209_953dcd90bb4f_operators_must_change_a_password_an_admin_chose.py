"""operators must change a password an admin chose

`operators.must_change_password`: set while the operator's password is one someone else chose
(an admin's `POST /admin/v1/operators`, `reset-credentials`, or `flask operators create` once an
admin exists). While it is set the operator may only change their password, read their own
profile and log out; `POST /admin/v1/me/password` clears it.

Existing operators get it set when the audit trail shows their password still is one an admin
chose: their last successful credentials reset, or their creation through the admin API (by an
operator, not the CLI), with no successful change of their own password since. Everyone else
keeps working as before. Each operator flagged so gets an audit row (`operator.password_change_required`,
actor `system`). A downgrade drops the column and so forgets who still has to change.

Revision ID: 953dcd90bb4f
Revises: b3d5f7a9c1e2
Create Date: 2026-12-09 10:00:00
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "953dcd90bb4f"
down_revision = "b3d5f7a9c1e2"
branch_labels = None
depends_on = None

# Operators whose password was last set by someone else: a reset, or a creation by an operator
# through the admin API, with no successful password change of their own at or after it.
FLAG_ADMIN_CHOSEN = sa.text(
    "UPDATE operators SET must_change_password = :yes WHERE EXISTS ("
    " SELECT 1 FROM audit_events s WHERE s.target_id = operators.id AND s.outcome = 'ok'"
    " AND (s.action = 'operator.credentials_reset'"
    "      OR (s.action = 'operator.create' AND s.actor_type = 'operator'))"
    " AND NOT EXISTS ("
    "  SELECT 1 FROM audit_events c WHERE c.target_id = operators.id AND c.outcome = 'ok'"
    "  AND c.action = 'operator.password_change' AND c.at >= s.at))"
)


def upgrade() -> None:
    # Plain ALTER TABLE (a column with a server default): no batch copy on SQLite of a table
    # others reference (operator_sessions).
    op.add_column(
        "operators",
        sa.Column("must_change_password", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    bind = op.get_bind()
    yes = sa.bindparam("yes", True, type_=sa.Boolean())
    bind.execute(FLAG_ADMIN_CHOSEN.bindparams(yes))
    flagged = bind.execute(
        sa.text("SELECT id FROM operators WHERE must_change_password = :yes").bindparams(yes)
    )
    now = datetime.now(UTC)
    at = now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now  # as core.db.UTCDateTime
    audit = sa.table(
        "audit_events",
        sa.column("id", sa.String), sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor_type", sa.String), sa.column("actor_id", sa.String), sa.column("action", sa.String),
        sa.column("target_type", sa.String), sa.column("target_id", sa.String),
        sa.column("outcome", sa.String), sa.column("details", sa.JSON),
    )  # fmt: skip
    rows = [
        {
            "id": str(uuid.uuid4()),
            "at": at,
            "actor_type": "system",
            "actor_id": "migration:953dcd90bb4f",
            "action": "operator.password_change_required",
            "target_type": "operator",
            "target_id": row[0],
            "outcome": "ok",
            "details": {"reason": "password chosen by an admin, never changed since"},
        }  # fmt: skip
        for row in flagged
    ]
    if rows:
        op.bulk_insert(audit, rows)


def downgrade() -> None:
    op.drop_column("operators", "must_change_password")
