"""`python -m workers.sweeper`: re-enqueue lost or due jobs and rebuild revocations, forever."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from core.db import db
from core.outbox.service import outbox
from core.outbox.sweeper import scrub_dead, sweep
from domain.applications import drafts as applications
from domain.applications import materials as application_materials
from domain.identity.service import expire_abandoned
from factory import create_app

log = logging.getLogger("yiwang.sweeper")


_housekeeping = {"last": 0.0}


def _guarded(session: object, step: str, work: Callable[[], Any], default: Any) -> Any:
    """One step of a pass: a failure is logged and rolled back, and the pass goes on with the
    next step. Each needs something else (Redis for the revocations, the province for
    reconciliation, storage for the orphan sweep): one away must not stop the others."""
    try:
        return work()
    except Exception:
        log.exception("a sweeper step failed", extra={"step": step})
        session.rollback()  # type: ignore[attr-defined]
        return default


def housekeeping(session: object, interval: float) -> dict:
    """Due-soon / overdue notices, expired drafts, SMS codes, the personal data of jobs dead for
    OUTBOX_DEAD_SCRUB_DAYS, pending operator TOTP secrets, ended citizen and operator sessions,
    rectification responses awaiting their citizen (reminded from the working day before their
    period ends, `remind_on`; confirmed by default past it, in bounded batches, their citizens
    told), answered complaints awaiting their citizen's rating (`complaint_pass`) and orphaned
    uploads, at most once per `interval` seconds (listing blobs is not free on object storage)."""
    from flask import current_app

    from api.deps import services
    from core import clock
    from domain.applications import deadline_watch
    from domain.auth import sessions as citizen_sessions
    from domain.auth import sms_login
    from domain.evaluations import invitations, rectification_sweep
    from domain.forwarding import events
    from domain.operators import credential_changes
    from domain.operators import sessions as operator_sessions

    now = time.monotonic()
    if _housekeeping["last"] and now - _housekeeping["last"] < interval:
        return {}
    _housekeeping["last"] = now

    def notices() -> int:
        told = deadline_watch.watch(session, clock.now())  # type: ignore[arg-type]
        told += invitations.invite(session, clock.now())  # type: ignore[arg-type]
        session.commit()  # type: ignore[attr-defined]
        return told

    deadlines = _guarded(session, "deadline_notices", notices, 0)
    visits = _guarded(session, "appointments", lambda: appointment_pass(session), {})
    purged = _guarded(session, "drafts", lambda: applications.purge_expired_drafts(session), 0)  # type: ignore[arg-type]
    nonces = _guarded(session, "nonces", lambda: events.purge_nonces(session, clock.now()), 0)  # type: ignore[arg-type]
    codes = _guarded(session, "sms_challenges", lambda: sms_login.purge_expired_challenges(session), 0)  # type: ignore[arg-type]
    scrub_days = current_app.config["OUTBOX_DEAD_SCRUB_DAYS"]
    dead_jobs = _guarded(session, "dead_jobs", lambda: scrub_dead(session, days=scrub_days), 0)  # type: ignore[arg-type]
    ttl = current_app.config["ADMIN_TOTP_PENDING_TTL"]
    secrets = _guarded(
        session, "pending_totp",
        lambda: credential_changes.purge_expired_pending_totp(session, ttl=ttl),  # type: ignore[arg-type]
        0,
    )  # fmt: skip
    # The revocation list's window (factory.py): a revoked session is rebuilt into Redis that long.
    access_ttl = max(current_app.config["ACCESS_TOKEN_TTL"], current_app.config["OAUTH_ACCESS_TOKEN_TTL"])
    ended = _guarded(
        session, "login_sessions",
        lambda: citizen_sessions.purge_ended_sessions(session, access_ttl=access_ttl),  # type: ignore[arg-type]
        {"sessions": 0, "tokens": 0},
    )  # fmt: skip
    admins = _guarded(
        session, "operator_sessions", lambda: operator_sessions.purge_expired_sessions(session), 0  # type: ignore[arg-type]
    )  # fmt: skip
    # Before the confirmations: a response whose last day has passed is confirmed, not reminded.
    reminded = _guarded(
        session, "rectification_reminders",
        lambda: rectification_sweep.remind_undecided(  # type: ignore[arg-type]
            session, clock.now(), days_before=current_app.config["RECTIFY_REMIND_WORKING_DAYS_BEFORE"]
        ),
        0,
    )  # fmt: skip
    undecided = _guarded(
        session, "rectifications",
        lambda: rectification_sweep.close_undecided(  # type: ignore[arg-type]
            session, clock.now(), decide_days=current_app.config["RECTIFY_DECIDE_WORKING_DAYS"],
            remind_days=current_app.config["RECTIFY_REMIND_WORKING_DAYS_BEFORE"],
        ),
        0,
    )  # fmt: skip
    complaints = complaint_pass(session)
    orphans = _guarded(
        session, "orphans",
        lambda: application_materials.sweep_orphans(session, services().applications),  # type: ignore[arg-type]
        {"files": 0, "blobs": 0, "partial_writes": 0},
    )  # fmt: skip
    return {
        "deadline_notices": deadlines, **visits, "drafts_purged": purged, "nonces_purged": nonces,
        "sms_challenges_purged": codes, "dead_jobs_scrubbed": dead_jobs, "pending_totp_purged": secrets,
        "login_sessions_purged": ended["sessions"], "refresh_tokens_purged": ended["tokens"],
        "operator_sessions_purged": admins, "rectifications_reminded": reminded,
        "rectifications_confirmed_by_default": undecided, **complaints,
        "orphan_files": orphans["files"], "orphan_blobs": orphans["blobs"],
        "partial_writes": orphans["partial_writes"],
    }  # fmt: skip


def complaint_pass(session: object) -> dict:
    """Answered complaints awaiting their citizen's rating: reminded from
    COMPLAINT_RATE_REMIND_DAYS_BEFORE days before their last day to rate (once an answer round),
    then, past it, closed unrated and their citizens told (once); each step in bounded batches,
    its notices written in the transaction that marks the complaint, so a retried or concurrent
    pass finds it done. The reminders first: a complaint past its last day is closed, not
    reminded."""
    from flask import current_app

    from api.deps import services
    from core import clock
    from domain.complaints import rate_reminder, unrated
    from domain.complaints.service import replies
    from notifications import complaints as notices

    settings = services().notifications.settings
    cfg = current_app.config

    def tell_rate_by(complaint: Any) -> None:  # an answer given before rating periods were kept
        notices.tell_answered(
            session, settings, complaint,  # type: ignore[arg-type]
            dedupe_key=f"complaint:{complaint.id}:rate-by:{complaint.rate_by.isoformat()}",
        )  # fmt: skip

    def tell_reminder(complaint: Any) -> bool:  # per answer round: a new answer is reminded anew
        round_ = replies(session, complaint.id)  # type: ignore[arg-type]
        return notices.tell_rate_reminder(
            session, settings, complaint,  # type: ignore[arg-type]
            dedupe_key=f"complaint:{complaint.id}:rate-reminder:{round_}",
        )  # fmt: skip

    def tell_closed(complaint: Any, rate_by: Any) -> None:  # a complaint is closed once
        notices.tell_closed_unrated(
            session, settings, complaint, rate_by,  # type: ignore[arg-type]
            dedupe_key=f"complaint:{complaint.id}:closed-unrated",
        )  # fmt: skip

    reminded = _guarded(
        session, "complaints_rate_reminders",
        lambda: rate_reminder.remind_unrated(  # type: ignore[arg-type]
            session, clock.now(), days_before=cfg["COMPLAINT_RATE_REMIND_DAYS_BEFORE"], tell=tell_reminder
        ),
        0,
    )  # fmt: skip
    closed = _guarded(
        session, "complaints_unrated",
        lambda: unrated.close_unrated(  # type: ignore[arg-type]
            session, clock.now(), rate_days=cfg["COMPLAINT_RATE_DAYS"], tell=tell_rate_by,
            tell_closed=tell_closed,
        ),
        0,
    )  # fmt: skip
    return {"complaints_rate_reminded": reminded, "complaints_closed_unrated": closed}


def appointment_pass(session: object) -> dict:
    """The bookings of days the hall closed (cancelled by the hall, their citizens told), then
    no-shows and the reminders due (the day before, one hour before), through notifications.

    Each step its own transaction, the release first: it locks accounts, bookings, then slots,
    as an account merge does. Held on into a later step (or from an earlier one), one step's
    rows wait for a merge that waits for them: the no-shows just marked while the closed day's
    bookings are released, an escalated rectification (a merge moves it) while a reminder's row
    waits for its account (a deadlock on PostgreSQL)."""
    from api.deps import services
    from core import clock
    from domain.appointments import visits
    from domain.appointments.models import Hall
    from domain.evaluations import rectification_sweep
    from notifications import fanout

    now = clock.now()
    settings = services().notifications.settings
    names = services().catalog.snapshot().by_code

    def tell(appointment: Any, slot: Any, event_type: str, dedupe_key: str) -> bool:
        """One notice about a booking, with its service, time and hall; False when already told."""
        hall = session.get(Hall, appointment.hall_id)  # type: ignore[attr-defined]
        item = names.get(appointment.service_code) or {}
        params = {
            "service_name": item.get("name") or appointment.service_code,
            "time": visits.local_time(slot.starts_at), "hall": hall.name if hall else "",
        }  # fmt: skip
        note = fanout.notify(
            session, settings, account_id=appointment.account_id, event_type=event_type,  # type: ignore[arg-type]
            params=params, dedupe_key=dedupe_key, link=visits.link(appointment),
        )  # fmt: skip
        return note is not None

    told = sum(
        tell(
            appointment,
            slot,
            "appointment_closed",
            f"appointment:{appointment.id}:closed:{slot.day.isoformat()}",
        )
        for appointment, slot in visits.release_closed(session, now)  # type: ignore[arg-type]
    )
    session.commit()  # type: ignore[attr-defined]
    missed = visits.mark_no_shows(session, now)  # type: ignore[arg-type]
    session.commit()  # type: ignore[attr-defined]
    escalated = rectification_sweep.escalate_overdue(session, now)  # type: ignore[arg-type]
    if escalated:
        log.warning("rectifications overdue", extra={"escalated": escalated})
    for task in rectification_sweep.due_for_reminder(session, now):  # type: ignore[arg-type]
        # The departments' reminder: the operators' alerting picks these lines up.
        log.warning("rectification due soon", extra={"task_id": task.id, "department": task.department,
                                                     "due_on": task.due_on.isoformat()})  # fmt: skip
    session.commit()  # type: ignore[attr-defined]
    reminded = sum(
        tell(appointment, slot, "appointment_reminder", f"appointment:{appointment.id}:{kind}")
        for appointment, slot, kind in visits.due_reminders(session, now)  # type: ignore[arg-type]
    )
    session.commit()  # type: ignore[attr-defined]
    return {
        "no_shows": missed, "appointment_reminders": reminded, "appointments_closed_told": told,
        "rectifications_escalated": escalated,
    }  # fmt: skip


_reconcile = {"last": 0.0, "report_day": ""}


def reconcile_pass(session: object, interval: float, quiet_after: float) -> dict:
    """Ask the province about quiet cases at most once per `interval` seconds; once a day, log
    the cases submitted but not yet confirmed (the daily report)."""
    from api.deps import services
    from domain.forwarding import reconcile

    now = time.monotonic()
    if _reconcile["last"] and now - _reconcile["last"] < interval:
        return {}
    _reconcile["last"] = now
    deps = services().forwarding
    out: dict = {}
    try:
        report = reconcile.reconcile(session, deps.profile(), deps.client(), quiet_after=quiet_after)  # type: ignore[arg-type]
        out = {"reconcile_asked": report.asked, "reconcile_events": report.events_added,
               "reconcile_receipts": report.receipts_found, "reconcile_resent": report.resent}  # fmt: skip
    except Exception:
        log.exception("reconciliation failed")
        session.rollback()  # type: ignore[attr-defined]
    day = time.strftime("%Y-%m-%d")
    if _reconcile["report_day"] != day:
        _reconcile["report_day"] = day
        rows = reconcile.unconfirmed(session, older_than=quiet_after)  # type: ignore[arg-type]
        log.warning(
            "daily report: submitted but not yet confirmed by the province",
            extra={
                "report": "forwarding.unconfirmed",
                "count": len(rows),
                "oldest_seconds": rows[0]["age_seconds"] if rows else 0,
            },
        )
    return out


def apply_events(session: object) -> int:
    """Stage events the forwarders' appliers have not applied yet (a backstop: normally none)."""
    from api.deps import services
    from domain.forwarding import events

    try:
        return events.apply_pending(session, services().forwarding.profile())  # type: ignore[arg-type]
    except Exception:  # the next pass tries again
        log.exception("applying stage events failed")
        return 0


def shared_data_pass(session: object) -> dict:
    """Pending (conditional) shared records that are due another ask; values no longer needed."""
    from api.deps import services
    from domain.shared_data import service as sharing

    deps = services().govdata
    try:
        resolved = sharing.poll_pending(session, deps)  # type: ignore[arg-type]
        purged = sharing.purge_finished(session, deps)  # type: ignore[arg-type]
    except Exception:  # the next pass tries again
        log.exception("shared data pass failed")
        session.rollback()  # type: ignore[attr-defined]
        return {}
    return {"shared_resolved": resolved, "shared_purged": purged}


def run_once(housekeeping_interval: float = 600.0) -> dict:
    """One sweep pass; returns what it did. Each step runs whatever became of the others."""
    from flask import current_app

    from api.deps import services

    session = db.session()
    try:
        report = _guarded(session, "jobs", lambda: vars(sweep(session, outbox)), {})
        rebuilt = _guarded(session, "revocations", lambda: services().revocations.rebuild(session), 0)
        expired = _guarded(session, "verifications", lambda: expire_abandoned(session), 0)
        kept = housekeeping(session, housekeeping_interval)
        cfg = current_app.config
        reconciled = reconcile_pass(session, cfg["RECONCILE_INTERVAL"], cfg["RECONCILE_AFTER"])
        reconciled["events_applied"] = apply_events(session)
        shared = shared_data_pass(session)
        return {
            **shared,
            **report,
            "revocations": rebuilt,
            "verifications_expired": expired,
            **kept,
            **reconciled,
        }
    finally:
        db.session.remove()


def main(argv: list[str] | None = None) -> int:
    once = "--once" in (argv or sys.argv[1:])
    app = create_app()
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    with app.app_context():
        interval = app.config["OUTBOX_SWEEP_INTERVAL"]
        while not stop["flag"]:
            try:
                result = run_once(app.config["HOUSEKEEPING_INTERVAL"])
                if any(result.values()):
                    log.info("sweep", extra=result)
            except Exception:
                log.exception("sweep failed")
            if once:
                break
            time.sleep(interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
