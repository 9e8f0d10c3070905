"""办件编号 (case numbers): a configurable format and a serial that is unique under concurrency.

The default follows what provinces are observed to use: the 31-character 实施编码, the day in
Beijing time (yyyyMMdd) and a 4-digit serial per item and day. A province that differs sets
`CASE_NUMBER_FORMAT` (fields: code, date, serial; the serial scope is everything before
`{serial`). The serial comes from one upsert on `case_serials` (INSERT … ON CONFLICT DO UPDATE …
RETURNING), which PostgreSQL and SQLite both run atomically, and `applications.case_number` is
unique as a last guard.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from domain.applications.models import CaseSerial

BEIJING = ZoneInfo("Asia/Shanghai")
DEFAULT_FORMAT = "{code}{date:%Y%m%d}{serial:04d}"


def next_serial(session: Session, scope: str) -> int:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(CaseSerial).values(scope=scope, last=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[CaseSerial.scope], set_={"last": CaseSerial.last + 1}
    ).returning(CaseSerial.last)
    return int(session.execute(stmt).scalar_one())


class CaseNumbers:
    def __init__(self, fmt: str = DEFAULT_FORMAT) -> None:
        if "{serial" not in fmt:
            raise ValueError("CASE_NUMBER_FORMAT needs a {serial} field")
        self.fmt = fmt
        self._scope_fmt = fmt[: fmt.index("{serial")]
        # Fail at start-up, not at the first submission, when the format is wrong.
        self.format(code="X" * 31, when=datetime(2026, 1, 1, tzinfo=BEIJING), serial=1)

    def format(self, *, code: str, when: datetime, serial: int) -> str:
        return self.fmt.format(code=code, date=when.astimezone(BEIJING), serial=serial)

    def next(self, session: Session, *, code: str, when: datetime) -> str:
        local = when.astimezone(BEIJING)
        scope = self._scope_fmt.format(code=code, date=local) or "all"
        return self.format(code=code, when=local, serial=next_serial(session, scope[:64]))
