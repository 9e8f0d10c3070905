"""The forwarder's batched steps: build many claimed rows' bodies, record many receipts, at once.

The worker (workers/forwarder.py) claims rows in batches; building each body and recording each
receipt in its own transaction would cost a handful of statements and a commit per row. Here a
batch is read with one query per table and recorded in one transaction whose inserts and
updates go out as one statement per table. Same outcomes as Forwarder.deliver row by row: a
row whose lease moved on is superseded, and a batch that cannot be recorded as a whole (say a
deadlock) is recorded row by row instead.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.db import take_write_lock
from domain.applications.models import Application, ForwardingOutbox
from domain.forwarding import payload
from domain.forwarding.delivery import DELIVERED, SENDING, Forwarder, delivered_values, receipt_on
from integrations.province.client import Receipt

log = logging.getLogger("yiwang.forwarding")

Built = tuple[str, int, dict[str, Any]]  # row id, attempt, body
Sent = tuple[str, int, Receipt]  # row id, attempt, the province's receipt


def _current(session: Session, items: dict[str, int], *, lock: bool) -> list[ForwardingOutbox]:
    """The rows still held by these attempts (id: attempt), in id order."""
    F = ForwardingOutbox
    stmt = select(F).where(F.id.in_(sorted(items))).order_by(F.id).execution_options(populate_existing=True)
    if lock:
        take_write_lock(session, F.__table__, F.id.in_(sorted(items)))
        stmt = stmt.with_for_update()
    return [r for r in session.scalars(stmt) if r.state == SENDING and r.attempts == items[r.id]]


def prepare(fw: Forwarder, session: Session, claimed: list[tuple[str, int]]) -> tuple[list[Built], list[str]]:
    """Bodies for claimed rows, ready to send, and the outcomes of those that will not be sent
    (superseded, postponed while the circuit is open, dead when the body cannot be built)."""
    if not claimed:
        return [], []
    attempts = dict(claimed)
    if not fw.breaker_allows():
        return [], [
            fw.postpone(session, row_id, attempt, fw.profile.breaker_cooldown, "circuit open")
            for row_id, attempt in claimed
        ]
    rows = _current(session, attempts, lock=False)
    outcomes = ["superseded"] * (len(claimed) - len(rows))
    try:
        bodies = payload.build_many(session, fw.encryptor, fw.profile, rows)
        session.commit()  # the audit of the personal data read
    except Exception:  # a batch that cannot be read at all: row by row, each to its own end
        log.exception("building a batch failed; building row by row")
        session.rollback()
        bodies = {}
        for row in rows:
            try:
                bodies[row.id] = payload.build(session, fw.encryptor, fw.profile, row)
                session.commit()
            except Exception as exc:
                session.rollback()
                bodies[row.id] = exc
    built: list[Built] = []
    for row_id, attempt in claimed:
        body = bodies.get(row_id)
        if isinstance(body, Exception):
            outcomes.append(fw.cannot_build(session, row_id, attempt, body))
        elif body is not None:
            built.append((row_id, attempt, body))
    return built, outcomes


def record(fw: Forwarder, session: Session, sent: list[Sent]) -> list[str]:
    """Record the receipts of sent rows in one transaction; each row's outcome."""
    try:
        outcomes = _record_together(fw, session, sent)
        session.commit()
        return outcomes
    except Exception:
        log.warning("recording a batch of receipts failed; recording row by row", exc_info=True)
        session.rollback()
    outcomes = []
    for row_id, attempt, receipt in sent:
        try:
            outcomes.append(fw.record_delivered(session, row_id, attempt, receipt))
        except Exception:  # the lease brings the row back; the province dedupes the resend
            log.exception("recording a receipt failed")
            session.rollback()
            outcomes.append("error")
    return outcomes


def _record_together(fw: Forwarder, session: Session, sent: list[Sent]) -> list[str]:
    receipts = {row_id: receipt for row_id, _, receipt in sent}
    rows = _current(session, {row_id: attempt for row_id, attempt, _ in sent}, lock=True)
    app_ids = [r.application_id for r in rows if r.kind != "withdraw"]
    if len(set(app_ids)) != len(app_ids):  # one case twice: its moves must be flushed in turn
        raise ValueError("a case appears twice in the batch")
    take_write_lock(session, Application.__table__, Application.id.in_(app_ids))
    apps = {
        a.id: a
        for a in session.scalars(
            select(Application)
            .where(Application.id.in_(sorted(app_ids)))
            .order_by(Application.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    now = clock.now()
    # One transition per case, so nothing here needs to see another's pending rows: flushing
    # once at commit sends each table's rows as one statement.
    with session.no_autoflush:
        for row in rows:
            receipt = receipts[row.id]
            for column, value in delivered_values(receipt, now).items():
                setattr(row, column, value)
            row.locked_until = None
            if row.application_id in apps:
                receipt_on(session, fw.profile, row, apps[row.application_id], receipt.receipt_no, now)
    done = {r.id for r in rows}
    return [DELIVERED if row_id in done else "superseded" for row_id, _, _ in sent]
