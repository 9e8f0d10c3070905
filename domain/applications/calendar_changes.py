"""Due dates follow the calendar: an override added or removed moves the cases it falls within.

A due date is computed when the clock starts, pauses or resumes, on the calendar as it is then.
Operators enter the State Council's arrangement for a year the holiday library does not know yet
(and local closures, a typhoon day) when it is published, often after cases counting through that
year were accepted: without this, those cases kept a due date counted on the guess (weekends and
1 January only) and showed overdue during the Spring Festival.

The pauses are recounted too: a case kept its pauses as working days counted on the calendar of
the day each ended, so a day an override closes inside a past pause would push its due date back
once more (the day was never counted against the limit), and a make-up working day there would
bring it forward (the case showed overdue a day early). Cases paused on or before the day
follow even when their due date lies before it: a pause may run past the due date.

The follow-ups (these cases, the halls' slots, the rectifications) run in an outbox job written
in the override's transaction, not in the operator's request: a district closure recounts every
active rectification, too long for a request's timeout, and a step that fails is run again by the
outbox's retries (then dead, replayable from /admin/v1/jobs) instead of only being logged. Every
step recounts from the calendar as it is when it runs, so running it again is harmless and the
job that runs last leaves what the calendar says, whatever order the jobs of quick changes run in.
The halls' slots of the day are also closed or opened in the override's own transaction (one
bounded update): a booking or a move into a closed day must be refused from the operator's
answer on, not from whenever the job runs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.clock import BEIJING
from core.errors import AppError, RetryableError
from core.outbox import service as outbox
from domain.accounts import profile_cache
from domain.applications import states
from domain.applications.deadlines import compute_due, paused_working_days, pauses
from domain.applications.models import Application, ApplicationEvent
from domain.applications.service import spec_of
from domain.appointments import closures
from domain.calendar import service as calendar
from domain.calendar.models import CalendarOverride
from domain.evaluations import rectification, rectification_calendar
from domain.evaluations.service import RECTIFY_WORKING_DAYS
from domain.operators.audit_log import Actor

BATCH = 500
# The outbox job of an override's follow-ups (workers/tasks/calendar_overrides.py runs it).
FOLLOW_JOB = "calendar.follow"
# How long its retries go on before it is dead (then replayable from /admin/v1/jobs): a database
# or Redis outage of an hour or two must not leave the cases' due dates on the old calendar
# until an operator notices; each attempt is a recount, so trying again costs nothing else.
FOLLOW_RETRY_SPAN = 6 * 3600

log = logging.getLogger(__name__)


def add_override(
    session: Session, *, actor: Actor, region: str, day: date, kind: str, reason: str,
    rectify_decide_days: int = rectification.DECIDE_WORKING_DAYS,
    rectify_remind_days: int = rectification.REMIND_WORKING_DAYS_BEFORE,
    rectify_working_days: int = RECTIFY_WORKING_DAYS,
) -> CalendarOverride:  # fmt: skip
    """`calendar.add_override` and the job of its follow-ups (`follow_all`: the open cases
    counting through that day, the halls' slots of that day, the rectifications' deadlines and
    periods with the configured working days), committed together with the halls' slots of that
    day closed or opened already (no booking lands on a closed day from the answer on). Commits."""
    override = calendar.write_override(session, actor=actor, region=region, day=day, kind=kind, reason=reason)
    closures.close_or_open(session, day=override.day, region=override.region)
    _add_job(session, override.day, override.region, rectify_decide_days, rectify_remind_days,
             rectify_working_days)  # fmt: skip
    session.commit()
    return override


def delete_override(
    session: Session, *, actor: Actor, override_id: str,
    rectify_decide_days: int = rectification.DECIDE_WORKING_DAYS,
    rectify_remind_days: int = rectification.REMIND_WORKING_DAYS_BEFORE,
    rectify_working_days: int = RECTIFY_WORKING_DAYS,
) -> None:  # fmt: skip
    """`calendar.delete_override`, the halls' slots of that day and the job of its follow-ups,
    committed together (as `add_override`). Commits."""
    day, region = calendar.remove_override(session, actor=actor, override_id=override_id)
    closures.close_or_open(session, day=day, region=region)
    _add_job(session, day, region, rectify_decide_days, rectify_remind_days, rectify_working_days)
    session.commit()


def _add_job(
    session: Session, day: date, region: str, decide_days: int, remind_days: int, working_days: int
) -> None:
    # In the override's transaction: no override in force without its follow-ups to come, and
    # none to come for an override refused. The job runs after the commit, so it counts on the
    # calendar with this override (or without it) like every job written after it.
    outbox.add(session, FOLLOW_JOB, {
        "day": day.isoformat(), "region": region, "decide_days": decide_days,
        "remind_days": remind_days, "working_days": working_days,
    }, max_attempts=outbox.attempts_spanning(FOLLOW_RETRY_SPAN))  # fmt: skip


class FollowUpsIncomplete(RetryableError):
    """A step of `follow_all` failed: the job runs again (every step: each is a recount)."""


def follow_all(
    session: Session, *, day: date, region: str, decide_days: int, remind_days: int, working_days: int,
    never_caught: tuple[type[BaseException], ...] = (),
) -> dict[str, int]:  # fmt: skip
    """Everything that follows an override of `day` in `region`, each step recounting on the
    calendar as it is now (so running one again, or a job of an older override after a newer
    one's, leaves what the calendar says): the cases, the halls' slots, the rectifications.
    Commits as each step goes. How many each moved; FollowUpsIncomplete, after the others ran,
    when a step failed.

    A step's failure, whatever it is (a database error, a bug), does not keep the later steps
    from running; except the exceptions in `never_caught`, which propagate at once with no later
    step run. The worker passes RQ's job timeout there (domain code does not import rq): it is an
    Exception raised inside whatever step runs when the job's time (OUTBOX_RUN_TIMEOUT) is up,
    and the outbox may give the job to another worker from then on, so nothing more may run.
    The outbox then retries the job from its first step (each is a recount)."""
    steps: list[tuple[str, Callable[[], int]]] = [
        ("cases", lambda: follow(session, day=day, region=region)),
        ("halls", lambda: closures.follow(session, day=day, region=region)),
        ("rectifications", lambda: rectification_calendar.follow(
            session, day=day, region=region, decide_days=decide_days, remind_days=remind_days,
            working_days=working_days)),
    ]  # fmt: skip
    moved: dict[str, int] = {}
    failed: list[str] = []
    for name, step in steps:
        try:
            moved[name] = step()
        except never_caught:
            raise
        except Exception as exc:
            session.rollback()
            log.error("a calendar follow-up did not finish; the job will run it again",
                      extra={"step": name, "day": day.isoformat(), "region": region,
                             "error": type(exc).__name__}, exc_info=True)  # fmt: skip
            failed.append(f"{name} ({type(exc).__name__}: {str(exc)[:300]})")  # all three fit last_error
    if failed:
        raise FollowUpsIncomplete("calendar follow-ups failed: " + "; ".join(failed))
    return moved


def follow(session: Session, *, day: date, region: str) -> int:
    """Recompute the due dates of open cases whose running time limit or past pauses span `day`
    in a region under `region` (000000: every region), recounting their pauses on the calendar
    as it is now; commits each batch. Each case is recounted in a savepoint (`_isolated`): one
    that cannot be, for a fixed cause, is skipped and logged. How many moved."""
    day_ends = datetime.combine(day + timedelta(days=1), time(), tzinfo=BEIJING)
    paused_by_then = (
        select(ApplicationEvent.id)
        .where(
            ApplicationEvent.application_id == Application.id,
            ApplicationEvent.to_status.in_(states.PAUSED),
            ApplicationEvent.at < day_ends,
        )
        .exists()
    )
    moved = 0
    after = ""
    while True:
        batch = list(
            session.scalars(
                select(Application)
                .where(
                    Application.clock_started_on.is_not(None),
                    Application.clock_started_on <= day,
                    or_(Application.due_on >= day, paused_by_then),
                    Application.status.not_in(states.FINAL),
                    Application.id > after,
                )
                .order_by(Application.id)
                .limit(BATCH)
                .with_for_update()
            )
        )
        moves = _moves(session, [app.id for app in batch])
        for app in batch:
            moved += _isolated(session, app, lambda a: _recount(session, a, day, region, moves[a.id]))  # noqa: B023 - called at once
        session.commit()
        if len(batch) < BATCH:
            return moved
        after = batch[-1].id


def _isolated(session: Session, app: Application, recount: Callable[[Application], int]) -> int:
    """`recount(app)` in a savepoint. A case that cannot be recounted for a fixed cause (an
    AppError: its pinned item version unreadable, a count past the calendar's range) would fail
    the same way on every retry: it is left as it was and logged by id, and the others go on.
    Anything else (a database error, a lock timeout, the job's own timeout) propagates: the step
    fails and the job runs it again."""
    try:
        with session.begin_nested():
            return recount(app)
    except AppError as exc:
        log.error("a case could not follow the calendar; left as it was",
                  extra={"application_id": app.id, "error": type(exc).__name__})  # fmt: skip
        return 0


def _recount(
    session: Session, app: Application, day: date, region: str, moves: list[tuple[str, datetime]]
) -> int:
    """1 when the case's due date moved (0 too when the override's region is not the case's)."""
    spec = spec_of(session, app)
    if region not in calendar.region_chain(spec.region):
        return 0
    app.paused_working_days = paused_working_days(session, pauses(moves), region=spec.region)
    due = compute_due(
        session, app.clock_started_on, spec.time_limits, paused=app.paused_working_days,  # type: ignore[arg-type]
        region=spec.region, paused_days=app.paused_days or 0,
    )  # fmt: skip
    if due == app.due_on:
        return 0
    app.due_on = due
    profile_cache.mark_changed(session, app.account_id)
    profile_cache.mark_application_changed(session, app.id)
    return 1


def _moves(session: Session, app_ids: list[str]) -> dict[str, list[tuple[str, datetime]]]:
    """The timeline moves (target status, time) of each case, in timeline order."""
    moves: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    if not app_ids:
        return moves
    rows = session.execute(
        select(ApplicationEvent.application_id, ApplicationEvent.to_status, ApplicationEvent.at)
        .where(ApplicationEvent.application_id.in_(app_ids))
        .order_by(ApplicationEvent.application_id, ApplicationEvent.seq)
    )
    for app_id, target, at in rows:
        moves[app_id].append((target, at))
    return moves
