"""Case numbers (办件编号): unique under concurrency, a serial not held up by another submission's
transaction, a province's own format, and the connection left committing durably."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from core import clock
from core.db import db
from domain.applications.case_numbers import BEIJING, CaseNumbers
from tests.api.v1.applications.conftest import PASSPORT, SS_CARD


def test_case_numbers_are_unique_under_concurrency(app, seeded):
    numbers = CaseNumbers()
    out: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        session = db.session()
        try:
            for _ in range(10):
                number = numbers.next(session, code=SS_CARD, when=clock.now())
                session.commit()
                with lock:
                    out.append(number)
        finally:
            db.session.remove()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 40 and len(set(out)) == 40
    assert sorted(int(n[-4:]) for n in out) == list(range(1, 41))


def test_a_case_number_does_not_wait_for_another_submission_to_commit(app, seeded):
    """On PostgreSQL the serial is taken in a transaction of its own: a submission still writing
    (its transaction open) does not hold up the next one; one that then fails leaves a gap."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the serial is taken inside the submission")
    numbers = CaseNumbers()
    first = db.session()
    first.execute(text("SELECT 1"))  # a submission's transaction is open
    a = numbers.next(first, code=SS_CARD, when=clock.now())
    got: list[str] = []
    other = threading.Thread(target=lambda: got.append(_number_in_new_session(numbers)))
    other.start()
    other.join(timeout=5)
    assert got, "the second submission waited for the first one's transaction"
    first.rollback()  # the first submission fails after taking its number
    db.session.remove()
    c = _number_in_new_session(numbers)
    assert [int(n[-4:]) for n in (a, got[0], c)] == [1, 2, 3]


def test_a_province_format_numbers_its_own_way_with_a_serial_per_scope(app, seeded):
    """CASE_NUMBER_FORMAT: the serial counts per everything before {serial} (here item and
    year), so another format never shares a serial with the default one."""
    yearly = CaseNumbers("GD{code}{date:%Y}{serial:06d}")
    when = clock.now()
    with Session(db.engine) as session:
        a = yearly.next(session, code=SS_CARD, when=when)
        b = yearly.next(session, code=SS_CARD, when=when)
        other = yearly.next(session, code=PASSPORT, when=when)
        daily = CaseNumbers().next(session, code=SS_CARD, when=when)
        session.commit()
    year = f"{when.astimezone(BEIJING):%Y}"
    assert (a, b, other) == (
        f"GD{SS_CARD}{year}000001",
        f"GD{SS_CARD}{year}000002",
        f"GD{PASSPORT}{year}000001",
    )
    assert daily.endswith("0001") and len(daily) == 31 + 8 + 4
    with pytest.raises(ValueError):
        CaseNumbers("{code}{date:%Y%m%d}")  # no serial: refused at start-up
    # Numbers longer than the 48 characters stored would fail every submission: refused too.
    with pytest.raises(ValueError, match="at most 48"):
        CaseNumbers("{code}{date:%Y%m%d%H%M%S}{serial:06d}")
    assert len(CaseNumbers("{code}{date:%Y%m%d}{serial:09d}").format(code=SS_CARD, when=when, serial=1)) == 48


def test_taking_a_case_number_leaves_the_connection_committing_durably(app, seeded):
    """The serial's own commit skips its WAL flush (the submission's commit covers it); the
    setting is that transaction's alone, so whatever runs next on the pooled connection (any
    other request's writes) still waits for its commit to reach the disk."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no synchronous_commit")
    engine = create_engine(db.engine.url, pool_size=1, max_overflow=0)
    try:
        with Session(engine) as session:
            CaseNumbers().next(session, code=SS_CARD, when=clock.now())
            assert session.execute(text("SHOW synchronous_commit")).scalar() == "on"
    finally:
        engine.dispose()


def _number_in_new_session(numbers: CaseNumbers) -> str:
    with Session(db.engine) as session:
        number = numbers.next(session, code=SS_CARD, when=clock.now())
        session.commit()
        return number
