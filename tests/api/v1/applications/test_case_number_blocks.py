"""Case-number serials reserved in blocks per process (CASE_NUMBER_BLOCK) on PostgreSQL."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core import clock
from core.db import db
from domain.applications import case_numbers as case_numbers_mod
from domain.applications.case_numbers import CaseNumbers
from domain.applications.models import CaseSerial
from tests.api.v1.applications.conftest import PASSPORT, SS_CARD, submit, verified
from tests.api.v1.applications.test_bad_input import _ready


def _postgres_only() -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("blocks are reserved on PostgreSQL only")


def _take(numbers: CaseNumbers, code: str = SS_CARD, when: datetime | None = None) -> int:
    with Session(db.engine) as session:
        number = numbers.next(session, code=code, when=when or clock.now())
        session.commit()
    return int(number[-4:])


def _reserved(code: str = SS_CARD) -> int:
    """How far the serial row of today's scope for `code` has been reserved."""
    with Session(db.engine) as session:
        rows = session.scalars(select(CaseSerial.last).where(CaseSerial.scope.startswith(code))).all()
    return max(rows, default=0)


def test_two_processes_each_hand_out_their_own_block(app, seeded):
    _postgres_only()
    first, second = CaseNumbers(block=3), CaseNumbers(block=3)  # two workers' allocators
    taken = [
        ("first", _take(first)),
        ("second", _take(second)),
        ("first", _take(first)),
        ("first", _take(first)),
        ("first", _take(first)),
        ("second", _take(second)),
    ]
    assert [n for who, n in taken if who == "first"] == [1, 2, 3, 7]
    assert [n for who, n in taken if who == "second"] == [4, 5]
    assert _reserved() == 9  # three reservations of three, not one upsert per number
    assert len({n for _, n in taken}) == len(taken)


def test_blocks_stay_unique_under_concurrency(app, seeded):
    _postgres_only()
    workers = [CaseNumbers(block=4), CaseNumbers(block=4)]
    out: list[int] = []
    lock = threading.Lock()

    def take(numbers: CaseNumbers) -> None:
        for _ in range(10):
            serial = _take(numbers)
            with lock:
                out.append(serial)

    threads = [threading.Thread(target=take, args=(workers[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 40 and len(set(out)) == 40
    assert _reserved() == 40  # 20 numbers per allocator: five blocks each, none left over


def test_each_item_and_day_has_its_own_block(app, seeded):
    _postgres_only()
    numbers = CaseNumbers(block=5)
    assert [_take(numbers), _take(numbers)] == [1, 2]
    assert _take(numbers, code=PASSPORT) == 1
    assert _take(numbers, when=clock.now() + timedelta(days=1)) == 1  # the next day starts over
    assert _take(numbers) == 3


def test_a_forked_process_does_not_reuse_its_parents_block(app, seeded):
    _postgres_only()
    numbers = CaseNumbers(block=5)
    assert _take(numbers) == 1  # the parent holds 2-5
    assert _in_child(lambda: numbers._blocks.take(_scope(), lambda size: 50)) == 46  # a block of its own
    assert _take(numbers) == 2  # the parent goes on with its own


def test_a_fork_while_a_thread_holds_the_lock_leaves_the_child_a_working_one():
    """gunicorn with preload_app forks the master: a thread of it may hold the lock right then."""
    blocks = case_numbers_mod.SerialBlocks(5)
    assert blocks.take("scope", lambda size: 5) == 1
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with blocks._lock:
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(5)
        assert _in_child(lambda: blocks.take("scope", lambda size: 50)) == 46
    finally:
        release.set()
        thread.join()
    assert blocks.take("scope", lambda size: 5) == 2


def _scope(code: str = SS_CARD) -> str:
    return f"{code}{clock.now().astimezone(case_numbers_mod.BEIJING):%Y%m%d}"


def _in_child(work: Callable[[], int], timeout: float = 10.0) -> int:
    """What `work` returns in a forked child process (killed, and the test failed, if it hangs)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest, no database connection, just the answer
        try:
            os.write(write_end, str(work()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    try:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the child process hung")
            time.sleep(0.01)
        return int(os.read(read_end, 64).decode() or "-1")
    finally:
        os.close(read_end)


def test_a_failed_submission_on_sqlite_gives_its_number_back(app, seeded):
    """SQLite takes the serial inside the submission's transaction, whatever the block size."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL takes serials in a transaction of their own")
    numbers = CaseNumbers(block=5)
    with Session(db.engine) as session:
        numbers.next(session, code=SS_CARD, when=clock.now())
        session.rollback()
    assert _take(numbers) == 1
    assert _take(numbers) == 2


def test_a_block_size_out_of_range_is_refused_at_start_up():
    for size in (0, 1001):  # 1001 would spend a 4-digit day's serials on a few restarts
        with pytest.raises(ValueError, match="CASE_NUMBER_BLOCK"):
            CaseNumbers(block=size)


def test_submissions_through_the_api_take_numbers_from_the_configured_block(app, client, seeded):
    """The app's allocator takes CASE_NUMBER_BLOCK (default 10) at a time."""
    _postgres_only()
    assert app.config["CASE_NUMBER_BLOCK"] == 10
    numbers = []
    for person in range(2):
        citizen = verified(app, person)
        answer = submit(client, citizen, _ready(client, citizen))
        assert answer.status_code == 200, answer.get_json()
        numbers.append(answer.get_json()["case_number"])
    assert [int(n[-4:]) for n in numbers] == [1, 2]
    assert _reserved() == 10
    with db.engine.connect() as conn:
        assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"


def test_a_number_given_out_twice_after_a_lost_reservation_asks_for_a_retry(app, client, seeded):
    """A reservation the database lost (a failover) leaves this process holding numbers another one
    hands out again: the second submission with one is refused with a retryable 503, writes
    nothing, and the same request again takes a number from a fresh block."""
    _postgres_only()
    first = verified(app, 0)
    number = submit(client, first, _ready(client, first)).get_json()["case_number"]  # holds 0002-0010
    other = _ready(client, first)
    taken = number[:-4] + "0002"
    with db.engine.begin() as conn:  # another process gave 0002 out meanwhile
        conn.execute(
            text("UPDATE applications SET case_number = :n WHERE id = :id"), {"n": taken, "id": other["id"]}
        )
    second = verified(app, 1)
    draft = _ready(client, second)
    headers = {"Idempotency-Key": "retry-after-lost-block"}
    refused = submit(client, second, draft, headers=headers)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.get_json()["error"]["code"] == "application.case_number_retry"
    with db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, case_number FROM applications WHERE id = :id"), {"id": draft["id"]}
        ).one()
        outbox = conn.execute(
            text("SELECT count(*) FROM forwarding_outbox WHERE application_id = :id"), {"id": draft["id"]}
        ).scalar()
    assert tuple(row) == ("draft", None) and outbox == 0
    again = submit(client, second, draft, headers=headers)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["case_number"] == number[:-4] + "0011"  # a fresh block: 0011-0020


def test_a_reservation_that_waits_holds_up_its_own_item_only():
    blocks = case_numbers_mod.SerialBlocks(5)
    started, release = threading.Event(), threading.Event()
    reservations: list[str] = []

    def slow(size: int) -> int:  # item A's reservation waits on the database
        reservations.append("A")
        started.set()
        assert release.wait(10)
        return size

    def quick(size: int) -> int:
        reservations.append("B")
        return size

    got: dict[str, list[int]] = {"A": [], "B": []}
    first_a = threading.Thread(target=lambda: got["A"].append(blocks.take("A", slow)))
    second_a = threading.Thread(target=lambda: got["A"].append(blocks.take("A", slow)))
    first_a.start()
    assert started.wait(10)
    second_a.start()  # waits for the first A's block instead of reserving one of its own
    time.sleep(0.2)  # time to reach A's reservation lock
    b = threading.Thread(target=lambda: got["B"].append(blocks.take("B", quick)))
    b.start()
    b.join(5)
    assert not b.is_alive() and got["B"] == [1]  # item B went on while A's reservation waited
    assert got["A"] == []
    release.set()
    first_a.join(5)
    second_a.join(5)
    assert sorted(got["A"]) == [1, 2]
    assert reservations == ["A", "B"]  # one reservation per item
