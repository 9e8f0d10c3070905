"""Reconciliation: ask the province about quiet cases and repair what callbacks missed.

A case is asked about when it has events waiting for a missing predecessor (after GAP_AFTER),
or a non-final status that has not moved for `quiet_after`. The province's answer fills missed
stage events (through the same path as callbacks) and marks rows the province has although
yiwang never saw the receipt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, exists, func, or_, select, update
from sqlalchemy.orm import Session

from core import clock
from domain.applications import states
from domain.applications.models import Application, ForwardingOutbox
from domain.forwarding import delivery, events
from domain.forwarding.models import WAITING, ProvinceEvent
from integrations.province.client import ProvinceClient, ProvinceError
from integrations.province.profile import Profile

log = logging.getLogger("yiwang.forwarding")

# Statuses the province still owes us news about.
OPEN = tuple(s for s in states.STATUSES if s not in states.FINAL and s != states.DRAFT)


@dataclass
class Report:
    asked: int = 0
    events_added: int = 0
    receipts_found: int = 0
    resent: int = 0
    unknown: int = 0
    errors: int = 0
    cases: list[str] = field(default_factory=list)


# A stage event waiting for its predecessor is usually a reordering the predecessor's retry
# repairs within seconds; after this long the case is asked about at the next pass rather than
# after `quiet_after` (an hour), for while it waits the citizen cannot withdraw or resubmit.
GAP_AFTER = 120.0


def candidates(
    session: Session, profile: Profile, *, quiet_after: float, limit: int, gap_after: float = GAP_AFTER
) -> list[str]:
    """Case numbers worth asking about: those with events waiting for a missing predecessor and
    not asked yet first, then the least recently asked. A case asked within `quiet_after` waits its turn:
    asking changes nothing about a case, so without the rotation the same `limit` cases came
    back every pass and the others were never asked."""
    cutoff = clock.now() - timedelta(seconds=quiet_after)
    gap_cutoff = clock.now() - timedelta(seconds=min(gap_after, quiet_after))
    waiting = select(ProvinceEvent.application_id).where(
        ProvinceEvent.state == WAITING, ProvinceEvent.received_at < gap_cutoff
    )
    has_gap = Application.id.in_(waiting)
    # A gap that opened after the case was last asked about has not been asked about yet.
    new_gap = exists().where(
        ProvinceEvent.application_id == Application.id,
        ProvinceEvent.state == WAITING,
        ProvinceEvent.received_at < gap_cutoff,
        or_(
            Application.province_checked_at.is_(None),
            ProvinceEvent.received_at > Application.province_checked_at,
        ),
    )
    rows = session.execute(
        select(Application.case_number)
        .where(
            Application.case_number.is_not(None),
            or_(has_gap, (Application.status.in_(OPEN)) & (Application.updated_at < cutoff)),
            or_(Application.province_checked_at.is_(None), Application.province_checked_at < cutoff, new_gap),
        )
        .order_by(
            # A gap not asked about yet comes first; once asked, a case rotates with the others
            # by when it was last asked (a gap the province cannot answer must not stay first).
            case((new_gap, 0), else_=1),
            func.coalesce(Application.province_checked_at, Application.updated_at),
            Application.id,
        )
        .limit(limit)
    ).all()
    return [r[0] for r in rows]


def reconcile_case(
    session: Session, profile: Profile, client: ProvinceClient, sblsh: str, report: Report
) -> None:
    app = session.scalar(select(Application).where(Application.case_number == sblsh))
    if app is None:
        return
    # Its turn comes again after the others (not a change of the case), stamped before asking:
    # a case the province cannot answer (a record broken on its side, a timeout) would otherwise
    # stay first in line, stop every pass, and no other case would ever be asked.
    session.execute(
        update(Application)
        .where(Application.id == app.id)
        .values(province_checked_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    answer = client.status(sblsh)
    report.asked += 1
    if answer is None:
        # The province never heard of the case: every delivered row of it goes out again, but
        # not the data of a case the citizen withdrew (the province has nothing to stop).
        report.unknown += 1
        if app.status == states.WITHDRAWN:
            return
        res = session.execute(
            update(ForwardingOutbox)
            .where(ForwardingOutbox.application_id == app.id, ForwardingOutbox.state == delivery.DELIVERED)
            .values(
                state=delivery.PENDING,
                next_attempt_at=clock.now(),
                locked_until=None,
                # The maximum age starts again, as for an operator's replay: the row may be days
                # old, and its first temporary failure would otherwise make it dead at once.
                replayed_at=clock.now(),
                last_error="province has no record; resent by reconciliation",
            )
        )
        session.commit()
        report.resent += res.rowcount
        if res.rowcount:
            log.error(
                "province lost a case; resending",
                extra={"alert": "forwarding.province_lost", "case_number": sblsh},
            )
        return
    if answer.get("sblsh") not in (None, sblsh):
        # Another case's record (a mix-up on the province's side or in between): nothing of it
        # may mark this case's rows received or move it.
        report.errors += 1
        log.error(
            "province answered about another case",
            extra={"case_number": sblsh, "alert": "forwarding.wrong_case"},
        )
        return
    for received in answer.get("received") or []:
        _mark_received(session, profile, app.id, received, report)
    for raw in answer.get("events") or []:
        try:
            if events.receive(session, profile, raw, source="reconcile") != events.DUPLICATE:
                report.events_added += 1
        except Exception:  # one bad event must not stop the others
            session.rollback()
            report.errors += 1
    report.cases.append(sblsh)


def _mark_received(session: Session, profile: Profile, app_id: str, received: Any, report: Report) -> None:
    if not isinstance(received, dict) or not received.get("receipt_no"):
        return
    row = session.scalar(
        select(ForwardingOutbox)
        .where(
            ForwardingOutbox.application_id == app_id,
            ForwardingOutbox.submission_version == received.get("version"),
            ForwardingOutbox.kind == received["action"]
            if received.get("action")
            else ForwardingOutbox.kind.in_(("submit", "resubmit")),
            ForwardingOutbox.state.in_((delivery.PENDING, delivery.RETRYING, delivery.DEAD)),
        )
        .with_for_update()
    )
    if row is None:
        return
    now = clock.now()
    row.state, row.delivered_at, row.receipt_no = delivery.DELIVERED, now, str(received["receipt_no"])[:64]
    row.receipt = {"receipt_no": row.receipt_no, "found_by": "reconciliation"}
    row.locked_until = None
    delivery.record_receipt(session, profile, row, row.receipt_no, now)
    session.commit()
    report.receipts_found += 1


def reconcile(
    session: Session, profile: Profile, client: ProvinceClient, *, quiet_after: float, limit: int = 200
) -> Report:
    """One pass over the quiet cases; stops early if the province is unreachable."""
    report = Report()
    for sblsh in candidates(session, profile, quiet_after=quiet_after, limit=limit):
        try:
            reconcile_case(session, profile, client, sblsh, report)
        except ProvinceError as exc:
            session.rollback()
            report.errors += 1
            if exc.retryable:
                break
        except Exception:  # this case's answer could not be used: the others still can
            session.rollback()
            report.errors += 1
            log.exception("reconciling a case failed", extra={"case_number": sblsh})
    return report


def unconfirmed(session: Session, *, older_than: float = 0.0, limit: int = 1000) -> list[dict[str, Any]]:
    """Submitted but not yet confirmed by the province: the daily report's rows."""
    now = clock.now()
    cutoff = now - timedelta(seconds=older_than)
    rows = session.scalars(
        select(ForwardingOutbox)
        .where(
            ForwardingOutbox.state.in_(delivery.ACTIVE + (delivery.DEAD,)),
            ForwardingOutbox.created_at <= cutoff,
        )
        .order_by(ForwardingOutbox.created_at)
        .limit(limit)
    )
    return [
        {
            "id": r.id,
            "case_number": r.case_number,
            "kind": r.kind,
            "version": r.submission_version,
            "state": r.state,
            "attempts": r.attempts,
            "age_seconds": int(_age(now, r.created_at)),
            "last_error": r.last_error,
        }  # fmt: skip
        for r in rows
    ]


def _age(now: datetime, then: datetime) -> float:
    return max(0.0, (now - then).total_seconds())
