"""The spool: a row handed to it reaches the table once, even when its process is killed, the
database is away for a while, or a segment is read twice; a row the database refuses does not
hold back the others."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from core import clock
from core.db import db
from core.spool import Spool
from domain.ledger.models import DataAccess
from tests.conftest import make_citizen

ROOT = Path(__file__).resolve().parents[2]
TABLE = DataAccess.__table__


def _line(account_id: str, **over) -> dict:
    row = {
        "id": str(uuid.uuid4()), "account_id": account_id, "at": clock.now(), "accessor_type": "client",
        "accessor_id": "c", "accessor_name": "测试银行", "source": "api", "resource": "GET /v1/applications",
        "resource_name": "查看办件", "purpose": "第三方应用经您授权（查看办件）", "application_id": None,
        "scope": "applications.read",
    }  # fmt: skip
    return row | over


def _stored(ids: list[str]) -> int:
    with db.autocommit() as conn:
        return conn.execute(select(func.count()).where(DataAccess.id.in_(ids))).scalar_one()


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl")) if directory.exists() else []


def _spooled(directory: Path) -> int:
    """Rows still on disk (a running spool keeps an empty segment ready for the next row)."""
    return sum(p.read_bytes().count(b"\n") for p in _segments(directory))


class _Database:
    """The autocommit connection a spool uses, refused until `up` is set."""

    up = False

    def connect(self):
        if not self.up:
            raise OperationalError("connect", {}, Exception("connection refused"))
        return db.autocommit()


def test_write_through_inserts_before_returning_and_leaves_no_segment(app, tmp_path):
    account = make_citizen(app)["account_id"]
    spool = Spool(TABLE, db.autocommit, tmp_path, interval=0, dates=("at",))
    row = _line(account)
    spool.write(row)
    assert _stored([row["id"]]) == 1
    assert _segments(tmp_path) == []
    with db.autocommit() as conn:
        at = conn.execute(select(DataAccess.at).where(DataAccess.id == row["id"])).scalar_one()
    assert at == row["at"]


def test_the_thread_inserts_within_its_interval_then_deletes_the_segment(app, tmp_path):
    account = make_citizen(app)["account_id"]
    spool = Spool(TABLE, db.autocommit, tmp_path, interval=0.05, dates=("at",))
    rows = [_line(account) for _ in range(40)]
    try:
        for row in rows:
            spool.write(row)
        assert _spooled(tmp_path), "a written row is on disk before the database has it"
        deadline = time.monotonic() + 5
        while _stored([r["id"] for r in rows]) < len(rows) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _stored([r["id"] for r in rows]) == len(rows)
        deadline = time.monotonic() + 5
        while _spooled(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _spooled(tmp_path) == 0
    finally:
        spool.close()


_WRITER = textwrap.dedent(
    """
    import sys, time, uuid
    from datetime import UTC, datetime
    from pathlib import Path
    from core.spool import Spool
    from domain.ledger.models import DataAccess

    account, directory, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    spool = Spool(DataAccess.__table__, None, directory, interval=3600, dates=("at",))
    for i in range(n):
        spool.write({
            "id": str(uuid.uuid4()), "account_id": account, "at": datetime.now(UTC),
            "accessor_type": "client", "accessor_id": "c", "accessor_name": "测试银行", "source": "api",
            "resource": f"GET /v1/applications?{i}", "resource_name": "查看办件", "purpose": "p",
            "application_id": None, "scope": "applications.read",
        })
    print("ready", flush=True)
    time.sleep(60)
    """
)


def _killed_writer(account: str, directory: Path, n: int, *, check=None) -> None:
    """A process spools `n` rows and is killed with SIGKILL before its thread inserts them;
    `check` runs while it is still alive."""
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, account, str(directory), str(n)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        if check is not None:
            check()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)


def test_rows_of_a_process_killed_with_sigkill_are_recovered_once_by_another(app, tmp_path):
    account = make_citizen(app)["account_id"]
    survivor = Spool(TABLE, db.autocommit, tmp_path, interval=0, dates=("at",))

    def while_alive() -> None:
        assert survivor.recover() == 0, "a live writer's segment is not touched"
        assert len(_segments(tmp_path)) == 1

    _killed_writer(account, tmp_path, 25, check=while_alive)
    assert survivor.recover() == 25
    assert _segments(tmp_path) == []
    assert survivor.recover() == 0
    with db.autocommit() as conn:
        resources = conn.execute(
            select(DataAccess.resource).where(DataAccess.account_id == account)
        ).scalars()
        assert sorted(resources) == sorted(f"GET /v1/applications?{i}" for i in range(25))


def test_a_segment_read_twice_is_inserted_once(app, tmp_path):
    account = make_citizen(app)["account_id"]
    _killed_writer(account, tmp_path, 3)
    (segment,) = _segments(tmp_path)
    shutil.copy(segment, tmp_path / "copy.jsonl")
    spool = Spool(TABLE, db.autocommit, tmp_path, interval=0, dates=("at",))
    assert spool.recover() == 6  # each copy's rows counted as read
    with db.autocommit() as conn:
        assert conn.execute(select(func.count()).where(DataAccess.account_id == account)).scalar_one() == 3


def test_a_line_cut_short_by_a_kill_is_skipped_and_the_rest_recovered(app, tmp_path):
    account = make_citizen(app)["account_id"]
    _killed_writer(account, tmp_path, 2)
    (segment,) = _segments(tmp_path)
    with segment.open("ab") as f:
        f.write(b'{"id":"half a li')
    spool = Spool(TABLE, db.autocommit, tmp_path, interval=0, dates=("at",))
    assert spool.recover() == 2
    assert _segments(tmp_path) == []


def test_rows_wait_while_the_database_is_away_and_access_pauses_past_the_limit(app, tmp_path):
    account = make_citizen(app)["account_id"]
    database = _Database()

    spool = Spool(TABLE, database.connect, tmp_path, interval=0, max_pending=3, dates=("at",))
    rows = [_line(account) for _ in range(3)]
    for row in rows:
        spool.write(row)
    assert _stored([r["id"] for r in rows]) == 0
    assert len(_segments(tmp_path)) == 3, "every row is still on disk"
    assert not spool.accepting()
    database.up = True
    assert spool.flush() == 3
    assert _stored([r["id"] for r in rows]) == 3
    assert spool.accepting() and _segments(tmp_path) == []


def test_a_row_the_database_refuses_is_dropped_and_the_others_go_in(app, tmp_path):
    account = make_citizen(app)["account_id"]
    spool = Spool(TABLE, db.autocommit, tmp_path, interval=3600, dates=("at",))  # flushed by hand
    good = [_line(account), _line(account)]
    bad = _line(account, accessor_name=None)  # NOT NULL
    try:
        for row in (good[0], bad, good[1]):
            spool.write(row)
        assert spool.flush() == 3
        assert _stored([r["id"] for r in good]) == 2 and _stored([bad["id"]]) == 0
        assert spool.accepting() and _spooled(tmp_path) == 0
    finally:
        spool.close()


@pytest.mark.parametrize("interval", [0, 0.05])
def test_close_inserts_what_is_spooled(app, tmp_path, interval):
    account = make_citizen(app)["account_id"]
    spool = Spool(TABLE, db.autocommit, tmp_path, interval=interval, dates=("at",))
    row = _line(account)
    spool.write(row)
    spool.close()
    assert _stored([row["id"]]) == 1 and _segments(tmp_path) == []


def test_rows_written_by_many_threads_while_the_thread_flushes_arrive_once_each(app, tmp_path):
    account = make_citizen(app)["account_id"]
    spool = Spool(TABLE, db.autocommit, tmp_path, interval=0.01, dates=("at",))
    rows = [[_line(account) for _ in range(50)] for _ in range(8)]
    start = threading.Barrier(len(rows))

    def work(mine: list[dict]) -> None:
        start.wait()
        for row in mine:
            spool.write(row)

    threads = [threading.Thread(target=work, args=(mine,)) for mine in rows]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        ids = [r["id"] for mine in rows for r in mine]
        deadline = time.monotonic() + 10
        while _stored(ids) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _stored(ids) == len(ids) == 400
    finally:
        spool.close()
    assert _spooled(tmp_path) == 0 and spool.accepting()


def test_a_process_forked_while_the_spool_thread_holds_its_lock_can_still_write(app, tmp_path):
    import os

    account = make_citizen(app)["account_id"]
    spool = Spool(TABLE, db.autocommit, tmp_path, interval=3600, dates=("at",))
    spool.start()
    spool._lock.acquire()  # as the parent's thread would, at the moment of a fork
    try:
        pid = os.fork()
        if pid == 0:  # the child writes one row to its own segment, then leaves at once
            try:
                signal.alarm(5)  # a child stuck on the inherited lock dies instead of hanging the suite
                spool.write(_line(account))
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
    finally:
        spool._lock.release()
        spool.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert _spooled(tmp_path) == 1  # the child's row, left for recovery (it never flushed)


def test_the_backlog_shows_what_waits_on_the_host_and_since_when(app, client, tmp_path, monkeypatch):
    """Operators see a host falling behind: segments still holding lines, their size and age
    (every process's, from the directory), and zero once the database took them."""
    import os

    from tests.forwarding.conftest import ops_headers

    account = make_citizen(app)["account_id"]
    database = _Database()

    spool = Spool(TABLE, database.connect, tmp_path, interval=0, dates=("at",))
    assert spool.backlog() == (0, 0, 0.0)
    (tmp_path / "4242-dead-1.jsonl").write_bytes(b"")  # a process's next segment: nothing waits in it
    for _ in range(2):
        spool.write(_line(account))
    waiting = spool.backlog()
    assert waiting.segments == 2 and waiting.bytes == sum(p.stat().st_size for p in _segments(tmp_path))
    hour_ago = time.time() - 3600
    os.utime(_segments(tmp_path)[1], (hour_ago, hour_ago))
    assert 3599 <= spool.backlog().oldest_seconds <= 3700

    monkeypatch.setattr(app.extensions["yiwang"], "ledger_lines", spool)
    ops = ops_headers(app, client)
    text = client.get("/admin/v1/host/metrics", headers=ops).get_data(as_text=True)
    assert "yiwang_ledger_spool_segments 2\n" in text and "yiwang_ledger_spool_accepting 1\n" in text
    oldest = re.search(r"^yiwang_ledger_spool_oldest_seconds (\S+)$", text, re.MULTILINE)
    assert oldest is not None and float(oldest.group(1)) >= 3599

    database.up = True
    assert spool.flush() == 2
    assert spool.backlog() == (0, 0, 0.0)


def test_the_host_metrics_are_for_operators_with_role_ops(app, client):
    from tests.domain.operators.factories import admin_headers, make_operator

    assert client.get("/admin/v1/host/metrics").status_code == 401
    clerk = admin_headers(
        client, make_operator(app, username=f"c-{uuid.uuid4().hex[:6]}", roles=("hall_officer",))
    )
    assert client.get("/admin/v1/host/metrics", headers=clerk).status_code == 403
