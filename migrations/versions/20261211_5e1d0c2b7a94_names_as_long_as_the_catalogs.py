"""department and certificate-type names as long as the catalog's

`evaluations.department` and `rectification_tasks.department` hold the handling department's
name as it was rated, `wallet_certificates.type_name` the name of a certificate's type as the
e-certificate library gives it. They were 64 characters while the catalog takes names of up
to 100 for both (`catalog_departments.name`, `catalog_ecert_types.name`): rating a case of a
department with a longer name, or opening a wallet holding such a certificate, failed on
PostgreSQL. All three become 100 characters; on PostgreSQL widening a varchar changes no row
and no index. SQLite keeps no length (the column's affinity stays TEXT), so only the declared
type in its schema is rewritten, the way SQLite's documentation describes for changes that
leave the stored rows alone ("Making Other Kinds Of Table Schema Changes"): copying
`evaluations` would drop a table that rectification tasks reference, which SQLite refuses with
foreign keys on. A downgrade refuses while a longer name is stored rather than cut names that
are looked up and shown.

Revision ID: 5e1d0c2b7a94
Revises: 452bc7ec256c
Create Date: 2026-12-11 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "5e1d0c2b7a94"
down_revision = "452bc7ec256c"
branch_labels = None
depends_on = None

COLUMNS = (
    ("evaluations", "department"),
    ("rectification_tasks", "department"),
    ("wallet_certificates", "type_name"),
)


def _resize(old: int, new: int) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for table, column in COLUMNS:
            op.alter_column(
                table, column, existing_type=sa.String(length=old), type_=sa.String(length=new),
                existing_nullable=column == "department",
            )  # fmt: skip
        return
    version = bind.execute(sa.text("PRAGMA schema_version")).scalar()
    bind.execute(sa.text("PRAGMA writable_schema = ON"))
    for table, column in COLUMNS:
        find = sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t")
        sql = bind.execute(find, {"t": table}).scalar()
        before, after = f"{column} VARCHAR({old})", f"{column} VARCHAR({new})"
        if sql is None or sql.count(before) != 1:
            raise RuntimeError(f"{table}: expected one column declared {before!r}")
        bind.execute(
            sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :t"),
            {"sql": sql.replace(before, after), "t": table},
        )
    bind.execute(sa.text(f"PRAGMA schema_version = {int(version) + 1}"))
    bind.execute(sa.text("PRAGMA writable_schema = OFF"))


def upgrade() -> None:
    _resize(64, 100)


def downgrade() -> None:
    bind = op.get_bind()
    for table, column in COLUMNS:
        count = sa.text(f"SELECT count(*) FROM {table} WHERE length({column}) > 64")
        longer = bind.execute(count).scalar()
        if longer:
            raise RuntimeError(
                f"{longer} rows of {table} hold a {column} longer than 64 characters: "
                "a downgrade would cut names that are looked up and shown"
            )
    _resize(100, 64)
