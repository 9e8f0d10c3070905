"""operators must change a password an admin chose

`operators.must_change_password`: set while the operator's password is one someone else chose
(an admin's `POST /admin/v1/operators`, `reset-credentials`, or `flask operators create` once an
admin exists). While it is set the operator may only change their password, read their own
profile and log out; `POST /admin/v1/me/password` clears it.

Existing operators get it set when the audit trail shows their password still is one an admin
chose: their last successful credentials reset, or their creation through the admin API (by an
operator, not the CLI), with no successful change of their own password since. Everyone else
keeps working as before. A downgrade drops the column and so forgets who still has to change.

Revision ID: 953dcd90bb4f
Revises: b3d5f7a9c1e2
Create Date: 2026-12-09 10:00:00
"""

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
    op.get_bind().execute(FLAG_ADMIN_CHOSEN.bindparams(sa.bindparam("yes", True, type_=sa.Boolean())))


def downgrade() -> None:
    op.drop_column("operators", "must_change_password")
