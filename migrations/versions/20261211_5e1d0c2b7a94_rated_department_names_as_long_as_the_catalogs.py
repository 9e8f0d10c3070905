"""rated department names as long as the catalog's

`evaluations.department` and `rectification_tasks.department` hold the handling department's
name as it was rated. They were 64 characters while the catalog takes names of up to 100
(`catalog_departments.name`): rating a case of a department with a longer name failed on
PostgreSQL. Both become 100 characters; on PostgreSQL widening a varchar changes no row and
no index. SQLite keeps no length (the column's affinity stays TEXT), so only the declared type
in its schema is rewritten, the way SQLite's documentation describes for changes that leave the
stored rows alone ("Making Other Kinds Of Table Schema Changes"): copying `evaluations` would
drop a table that rectification tasks reference, which SQLite refuses with foreign keys on.
A downgrade refuses while a longer name is stored rather than cut names that the public
figures are looked up by.

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

TABLES = ("evaluations", "rectification_tasks")


def _resize(old: int, new: int) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for table in TABLES:
            op.alter_column(
                table, "department", existing_type=sa.String(length=old), type_=sa.String(length=new),
                existing_nullable=True,
            )  # fmt: skip
        return
    version = bind.execute(sa.text("PRAGMA schema_version")).scalar()
    bind.execute(sa.text("PRAGMA writable_schema = ON"))
    for table in TABLES:
        find = sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t")
        sql = bind.execute(find, {"t": table}).scalar()
        before, after = f"department VARCHAR({old})", f"department VARCHAR({new})"
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
    for table in TABLES:
        longer = (
            op.get_bind()
            .execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE length(department) > 64")  # noqa: S608 - constant
            )
            .scalar()
        )
        if longer:
            raise RuntimeError(
                f"{longer} rows of {table} name a department longer than 64 characters: "
                "a downgrade would cut the names their figures are found by"
            )
    _resize(100, 64)
