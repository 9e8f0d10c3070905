"""wallet certificates that print an ID number mask it like the identity does

The wallet masked every 18-character certificate number as first four and last four
(1101**********8515) while the identity shows the same ID number as 110***********8515. Both
now use `core.masking.mask_id_number`. The stored masks of the two certificate types that print
the holder's ID number (resident ID card, driving licence) are rewritten from the old shape to
the new one: the fourth character is hidden too. Other rows are re-masked at the next sync.
Downgrade leaves the masks as they are: the hidden digit is not stored anywhere in the clear,
and a mask that hides more is never wrong.

Revision ID: 7f3a9c2e5d14
Revises: 3b7d1e5a9c42
Create Date: 2026-12-21 09:00:00
"""

from alembic import op

revision = "7f3a9c2e5d14"
down_revision = "3b7d1e5a9c42"
branch_labels = None
depends_on = None

# National e-certificate type codes whose number is the holder's ID number.
_ID_BEARING = ("11100000000019713D001", "11100000000019713D003")


def upgrade() -> None:
    op.execute(
        "UPDATE wallet_certificates SET number_masked = "
        "substr(number_masked, 1, 3) || '*' || substr(number_masked, 5) "
        f"WHERE type_code IN ('{_ID_BEARING[0]}', '{_ID_BEARING[1]}') "
        "AND length(number_masked) = 18 AND substr(number_masked, 4, 1) <> '*' "
        "AND substr(number_masked, 5, 10) = '**********'"
    )


def downgrade() -> None:
    pass
