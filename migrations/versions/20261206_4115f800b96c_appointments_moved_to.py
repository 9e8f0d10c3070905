"""appointments: moved_to, the booking a reschedule moved this one to

Cancelling a booking that a reschedule moved is 409. Which bookings were moved used to be
inferred (a successor of the same citizen and item created at the instant the booking was
closed), which a frozen test clock could confuse with a citizen's own cancel and next booking;
a reschedule now records it. Existing moved bookings are found with that old rule, so they keep
answering 409.

Revision ID: 4115f800b96c
Revises: f6a7b8c9d0e1
Create Date: 2026-12-06 09:00:00
"""

import sqlalchemy as sa
from alembic import op


revision = '4115f800b96c'
down_revision = 'f6a7b8c9d0e1'
branch_labels = None
depends_on = None

FK = 'fk_appointments_moved_to_appointments'

# The successor the old rule took for a move: same citizen and item, created when this one closed.
SUCCESSOR = (
    'SELECT s.id FROM appointments s'
    ' WHERE s.account_id = appointments.account_id AND s.service_code = appointments.service_code'
    ' AND s.created_at = appointments.updated_at AND s.id <> appointments.id'
)


def upgrade() -> None:
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moved_to', sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(op.f(FK), 'appointments', ['moved_to'], ['id'])
    op.execute(
        f"UPDATE appointments SET moved_to = ({SUCCESSOR} ORDER BY s.id LIMIT 1)"
        f" WHERE status = 'cancelled' AND EXISTS ({SUCCESSOR})"
    )


def downgrade() -> None:
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f(FK), type_='foreignkey')
        batch_op.drop_column('moved_to')
