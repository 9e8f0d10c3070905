"""slots closed by the calendar

`appointment_slots.closed`: a day that becomes a holiday (a calendar override) after its slots
were made closes them, so a slot id a phone still holds can no longer be booked or moved into
(409 `appointments.closed`). Every existing slot starts open: a day already declared closed
refuses listing, and the next override added or removed sets the flag for its day. A downgrade
drops the column.

Revision ID: 4f8b1c2e9a37
Revises: 9d3a6f0b2c71
Create Date: 2026-12-14 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "4f8b1c2e9a37"
down_revision = "9d3a6f0b2c71"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE with a constant default: no batch copy on SQLite of a table others reference.
    op.add_column(
        "appointment_slots", sa.Column("closed", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    op.drop_column("appointment_slots", "closed")
