"""Delivering outbox rows to the province: claim with a lease, send once at a time, record the answer.

Nothing is lost: a row stays in the table until the province's receipt is recorded; a worker
killed mid-send leaves its lease to expire and another worker sends again (the province
dedupes by 申办流水号 + version + action). Nothing is hammered: a token bucket and a cap on
requests in flight per profile (shared in Redis), and a circuit breaker that stops calls to a
dead province and lets one probe through after its cooldown.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Integer, and_, bindparam, case, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from core import audit, clock
from core.crypto import Encryptor
from core.db import database_away, take_write_lock
from core.db_statements import run_precompiled
from core.masking import redact_values
from core.throttle import CircuitBreaker, LeaseSemaphore, TokenBucket
from domain.accounts import profile_cache
from domain.applications import forms, notices, states, transitions
from domain.applications.models import OUTBOX_CANCELLED, OUTBOX_DEAD, Application, ForwardingOutbox
from domain.catalog.form_schema import resolve_ref
from domain.forwarding import payload
from integrations.province.client import ProvinceClient, ProvinceError, Receipt
from integrations.province.profile import Profile

log = logging.getLogger("yiwang.forwarding")

PENDING, SENDING, RETRYING, DELIVERED = "pending", "sending", "retrying", "delivered"
DEAD = OUTBOX_DEAD
CANCELLED = OUTBOX_CANCELLED  # a submission the citizen's withdrawal made needless
ACTIVE = (PENDING, SENDING, RETRYING)


class _LocalBucket:
    """The fallback pacing while Redis cannot be reached: this process's share of the rate."""

    def __init__(self, rate: float) -> None:
        self.rate, self.next = rate, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        with self.lock:
            now = time.monotonic()
            self.next = max(self.next, now) + 1.0 / self.rate
            return max(0.0, self.next - now - 1.0 / self.rate)


def _due(profile: Any, now: Any, F: Any = ForwardingOutbox) -> Any:
    """Rows of the profile that are due at `now`: waiting and due, or leased and expired."""
    return and_(
        F.profile == profile,
        or_(
            and_(
                or_(F.state == PENDING, F.state == RETRYING),  # not IN: precompiled SQL has no expanding IN
                or_(F.next_attempt_at.is_(None), F.next_attempt_at <= now),
            ),
            and_(F.state == SENDING, F.locked_until < now),
        ),
    )


def _claimable(profile: Any, now: Any, F: Any, limit: Any) -> Any:
    """Ids of up to `limit` due rows of `F` (the outbox or an alias of it), a case's rows in order."""
    earlier = aliased(ForwardingOutbox)
    return (
        select(F.id)
        .where(
            _due(profile, now, F),
            # A case's rows in order: versions ascending, a withdrawal after its version. A
            # submission waits for every earlier version to be delivered; a withdrawal only
            # for the sends still under way (not behind a dead letter: the citizen's "stop"
            # must not wait for an operator, and a send the province refused left it nothing).
            ~exists().where(
                earlier.application_id == F.application_id,
                earlier.state != DELIVERED,
                or_(
                    and_(F.kind != "withdraw", earlier.submission_version < F.submission_version),
                    and_(
                        F.kind == "withdraw",
                        earlier.kind != "withdraw",
                        earlier.submission_version <= F.submission_version,
                        or_(earlier.state == PENDING, earlier.state == SENDING, earlier.state == RETRYING),
                    ),
                ),
            ),
        )
        .order_by(F.next_attempt_at)
        .limit(limit)
    )


@functools.cache
def _claim_statement() -> Any:
    """Forwarder.claim's PostgreSQL statement, with bound parameters, built once."""
    F = ForwardingOutbox.__table__
    picked = aliased(ForwardingOutbox)
    now = bindparam("now", type_=F.c.sent_at.type)
    ids = _claimable(
        bindparam("profile", type_=F.c.profile.type), now, picked, bindparam("lim", type_=Integer())
    ).with_for_update(skip_locked=True, of=picked)
    return (
        update(F)
        .where(F.c.id.in_(ids.scalar_subquery()))
        .values(
            state=SENDING,
            attempts=F.c.attempts + 1,
            sent_at=now,
            locked_until=bindparam("until", type_=F.c.locked_until.type),
        )
        .returning(F.c.id, F.c.attempts)
    )


@dataclass
class Forwarder:
    profile: Profile
    client: ProvinceClient
    encryptor: Encryptor
    redis: Redis | None = None
    lease: float = 60.0
    processes: int = 2  # share of the rate each process takes when Redis is away
    _local: _LocalBucket | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        p = self.profile
        key = f"yiwang:province:{p.name}"
        self.bucket = TokenBucket(self.redis, key + ":bucket", p.rate_limit, p.burst) if self.redis else None
        self.inflight = (
            LeaseSemaphore(self.redis, key + ":inflight", p.concurrency, p.timeout + 5)
            if self.redis
            else None
        )
        self.breaker = (
            CircuitBreaker(self.redis, key + ":breaker", p.breaker_threshold, p.breaker_cooldown)
            if self.redis
            else None
        )
        self._local = _LocalBucket(max(1.0, p.rate_limit / max(1, self.processes)))

    # --- claiming ------------------------------------------------------------------------

    def claim(self, session: Session, limit: int) -> list[tuple[str, int]]:
        """Take up to `limit` due rows (rows of one case strictly in order); (id, attempt) each.

        On PostgreSQL one statement, built once: the due rows are picked with FOR UPDATE SKIP
        LOCKED (two workers never take the same row) and leased in the same UPDATE. SQLite (one
        writer at a time) picks, then leases each row while it is still due.
        """
        F = ForwardingOutbox
        now = clock.now()
        until = now + timedelta(seconds=self.lease)
        if session.get_bind().dialect.name == "postgresql":
            params = {"profile": self.profile.name, "now": now, "until": until, "lim": limit}
            rows = run_precompiled(session, _claim_statement(), params).all()
            session.commit()  # ends the session's autocommit use of its connection
            return [(row_id, int(attempt)) for row_id, attempt in rows]
        claimed: list[tuple[str, int]] = []
        for row_id in list(session.scalars(_claimable(self.profile.name, now, F, limit))):
            attempt = session.execute(
                update(F)
                .where(F.id == row_id, _due(self.profile.name, now))
                .values(state=SENDING, attempts=F.attempts + 1, sent_at=now, locked_until=until)
                .returning(F.attempts)
            ).scalar()
            if attempt is not None:
                claimed.append((row_id, int(attempt)))
        session.commit()
        return claimed

    # --- sending -------------------------------------------------------------------------

    def _pace(self) -> None:
        try:
            if self.bucket is not None:
                while (wait := self.bucket.take()) > 0:
                    time.sleep(min(wait, 0.5))
                return
        except RedisError:
            log.warning("rate limiter unavailable; pacing locally")
        wait = self._local.take() if self._local else 0.0
        if wait > 0:
            time.sleep(wait)

    def _enter(self) -> str | None | bool:
        """A place among the requests in flight: a token, None without Redis, False if full."""
        if self.inflight is None:
            return None
        deadline = time.monotonic() + self.profile.timeout
        try:
            while time.monotonic() < deadline:
                token = self.inflight.acquire()
                if token:
                    return token
                time.sleep(0.005)
            return False
        except RedisError:
            return None

    def breaker_allows(self) -> bool:
        try:
            return self.breaker.allow() if self.breaker else True
        except RedisError:
            return True

    def deliver(self, session: Session, row_id: str, attempt: int) -> str:
        """Send one claimed row and record the outcome; returns the row's new state."""
        row = session.get(ForwardingOutbox, row_id)
        if row is None or row.state != SENDING or row.attempts != attempt:
            session.rollback()
            return "superseded"
        if not self.breaker_allows():
            return self.postpone(session, row_id, attempt, self.profile.breaker_cooldown, "circuit open")
        try:
            body = payload.build(session, self.encryptor, self.profile, row)
            session.commit()  # the audit of the personal data read
        except Exception as exc:  # anything that stops building is for an operator
            session.rollback()
            return self.cannot_build(session, row_id, attempt, exc)
        sent = self.transmit(session, row_id, attempt, body)
        return sent if isinstance(sent, str) else self.record_delivered(session, row_id, attempt, sent)

    def cannot_build(self, session: Session, row_id: str, attempt: int, exc: Exception) -> str:
        if database_away(exc):
            # Not the row's fault: the database went away while the body was read. Put it back
            # (if the database is still away, this raises and the worker's loop waits).
            return self.postpone(session, row_id, attempt, 30.0, "database unavailable")
        return self._dead(session, row_id, attempt, f"cannot build the request: {type(exc).__name__}: {exc}")

    def transmit(self, session: Session, row_id: str, attempt: int, body: dict[str, Any]) -> Receipt | str:
        """Send a built body: the province's receipt (not yet recorded), or the outcome of a
        failed or postponed send, already recorded."""
        token = self._enter()
        if token is False:
            return self.postpone(session, row_id, attempt, 1.0, "concurrency cap reached")
        refused: ProvinceError | None = None
        try:
            self._pace()
            receipt = self.client.intake(body)
        except ProvinceError as exc:
            refused = exc
        finally:
            if token and self.inflight is not None:
                try:
                    self.inflight.release(token)
                except RedisError:
                    pass
        if refused is not None and body.get("action") == "withdraw" and refused.no_such_case:
            return self._nothing_to_withdraw(session, row_id, attempt)
        if refused is not None:
            # Outside the except block: an error recording the failure must not carry the
            # province's text (which may quote a name) along as its cause into a traceback.
            quoted = _quoted(body, self._form_fields(session, row_id))
            if body.get("action") == "withdraw":
                quoted += self._withdraw_quotable(session, row_id, body)
            return self._failed(session, row_id, attempt, refused, quoted=quoted)
        self._breaker_success()
        return receipt

    def _withdraw_quotable(self, session: Session, row_id: str, body: dict[str, Any]) -> list[str]:
        """What a refused withdrawal may quote that its body did not carry as applicant or form:
        the applicant's verified name, and the citizen's reason when written in Chinese."""
        values = []
        reason = body.get("reason")
        if isinstance(reason, str) and (_CJK.search(reason) or "@" in reason):
            values.append(reason)
        try:
            row = session.get(ForwardingOutbox, row_id)
            name = payload.applicant_name(session, self.encryptor, row.application_id) if row else None
        except Exception:  # masking more is the safe side; the refusal is still recorded
            session.rollback()
            log.warning("applicant name unavailable to mask a refusal", extra={"row_id": row_id})
            return values
        return [*values, name] if name else values

    def _form_fields(self, session: Session, row_id: str) -> FormFields | None:
        """The JSON Schema of each form field the body sent, by the name the province knows it
        (the profile's field mapping), with the whole form's schema; None when the form's spec
        cannot be read (every value is then treated as one the citizen wrote)."""
        try:
            row = session.get(ForwardingOutbox, row_id)
            app = session.get(Application, row.application_id) if row is not None else None
            if app is None or not app.items:
                return None
            spec = forms.spec_for(
                session, [(i["code"], int(i["version"])) for i in app.items], name=app.service_name
            )
        except Exception:  # masking more is the safe side; the refusal is still recorded
            session.rollback()
            log.warning("form spec unavailable to mask a refusal", extra={"row_id": row_id})
            return None
        mapped = {self.profile.fields.get(path, path): leaf for path, leaf in spec.leaves.items()}
        return FormFields(mapped, spec.schema)

    def _breaker_success(self) -> None:
        try:
            if self.breaker:
                self.breaker.success()
        except RedisError:
            pass

    # --- recording -----------------------------------------------------------------------

    def _finish(self, session: Session, row_id: str, attempt: int, **values: Any) -> bool:
        F = ForwardingOutbox
        if values.get("state") == RETRYING:
            # Put back to be sent again, unless the citizen withdrew the case while it was out
            # (the withdrawal cancels only what is not under way): then it is not to go out.
            withdrawn = exists().where(
                Application.id == F.application_id, Application.status == states.WITHDRAWN
            )
            values["state"] = case((and_(F.kind != "withdraw", withdrawn), CANCELLED), else_=RETRYING)
        res = session.execute(
            update(F)
            .where(F.id == row_id, F.state == SENDING, F.attempts == attempt)
            .values(locked_until=None, **values)
            .execution_options(synchronize_session=False)  # callers read the row afresh, if at all
        )
        return res.rowcount == 1

    def postpone(self, session: Session, row_id: str, attempt: int, seconds: float, why: str) -> str:
        """Put a claimed row back without counting the attempt (nothing was sent)."""
        ok = self._finish(
            session, row_id, attempt, state=RETRYING, attempts=attempt - 1,
            next_attempt_at=clock.now() + timedelta(seconds=seconds * (0.5 + random.random())),
        )  # fmt: skip
        session.commit()
        return f"postponed: {why}" if ok else "superseded"

    def _failed(
        self, session: Session, row_id: str, attempt: int, exc: ProvinceError, *, quoted: list[str]
    ) -> str:
        if exc.retryable and (exc.status is None or exc.status >= 500):
            try:
                if self.breaker and self.breaker.failure():
                    log.error(
                        "circuit opened for the province",
                        extra={"profile": self.profile.name, "alert": "forwarding.circuit_open"},
                    )
            except RedisError:
                pass
        if not exc.retryable:
            return self._dead(
                session,
                row_id,
                attempt,
                f"province refused: HTTP {exc.status} {exc.code or ''} {exc}".strip(),
                quoted=quoted,
            )
        row = session.get(ForwardingOutbox, row_id)
        now = clock.now()
        if (
            row is not None
            and (now - (row.replayed_at or row.created_at)).total_seconds() > self.profile.max_age
        ):
            return self._dead(
                session, row_id, attempt, f"not delivered within the maximum age; last error {exc}",
                quoted=quoted,
            )  # fmt: skip
        delay = backoff(attempt, self.profile.backoff_base, self.profile.backoff_cap, random.random())
        if exc.retry_after:
            delay = max(delay, exc.retry_after)
        # Bounded before it becomes a date: a Retry-After of 1e12 s lies past the year 9999.
        next_attempt = now + timedelta(seconds=min(delay, self.profile.max_age + 1))
        if row is not None:
            # The province's Retry-After is honoured up to the row's maximum age, not beyond: an
            # unsigned 429 (from anything in between) must not park a submission for years; the
            # attempt at the deadline is the last, and its failure makes the row dead.
            deadline = (row.replayed_at or row.created_at) + timedelta(seconds=self.profile.max_age + 1)
            next_attempt = max(min(next_attempt, deadline), now)
        ok = self._finish(
            session, row_id, attempt, state=RETRYING, last_error=redact_values(str(exc), quoted)[:2000],
            next_attempt_at=next_attempt,
        )  # fmt: skip
        session.commit()
        return RETRYING if ok else "superseded"

    def _dead(
        self, session: Session, row_id: str, attempt: int, reason: str, *, quoted: list[str] | None = None
    ) -> str:
        # The province's message may quote what it refused (a phone, an ID number, the
        # applicant's name): stored for operators, audited and logged, so with those masked.
        reason = redact_values(reason, quoted or [])
        ok = self._finish(session, row_id, attempt, state=DEAD, last_error=reason[:2000])
        if ok:
            row = session.get(ForwardingOutbox, row_id)
            if row is not None and row.kind in ("submit", "resubmit"):
                # The citizen's views now say the case is delayed (views._stalled); tell them too.
                mark_case_views(session, row.application_id)
                app = session.get(Application, row.application_id)
                if app is not None:
                    notices.delayed(session, app, submission_version=row.submission_version, row_id=row.id)
            audit.record(
                session, actor_type="system", actor_id="forwarder", action="forwarding.dead_letter",
                target_type="forwarding_outbox", target_id=row_id,
                details={"case_number": row.case_number if row else None, "reason": reason[:500]},
            )  # fmt: skip
        session.commit()
        if ok:
            log.error(
                "forwarding dead letter: an operator must correct and replay",
                extra={"row_id": row_id, "alert": "forwarding.dead_letter", "reason": reason[:500]},
            )
        return DEAD if ok else "superseded"

    def _nothing_to_withdraw(self, session: Session, row_id: str, attempt: int) -> str:
        """The province has no such case (every send of it was refused or never arrived): the
        withdrawal has nothing to stop there, and is done."""
        now = clock.now()
        ok = self._finish(
            session, row_id, attempt, state=DELIVERED, delivered_at=now, last_error=None,
            receipt={"no_such_case": True, "received_at": now.isoformat()},
        )  # fmt: skip
        session.commit()
        self._breaker_success()
        return DELIVERED if ok else "superseded"

    def record_delivered(self, session: Session, row_id: str, attempt: int, receipt: Receipt) -> str:
        now = clock.now()
        ok = self._finish(session, row_id, attempt, **delivered_values(receipt, now))
        if not ok:
            session.rollback()
            return "superseded"
        row = session.get(ForwardingOutbox, row_id)
        assert row is not None
        record_receipt(session, self.profile, row, receipt.receipt_no, now)
        session.commit()
        return DELIVERED


def delivered_values(receipt: Receipt, now: datetime) -> dict[str, Any]:
    """The outbox columns of a delivered row."""
    return {
        "state": DELIVERED, "delivered_at": now, "receipt_no": receipt.receipt_no, "last_error": None,
        "receipt": {
            "receipt_no": receipt.receipt_no, "received_at": receipt.received_at,
            "duplicate": receipt.duplicate,
        },
    }  # fmt: skip


def record_receipt(
    session: Session, profile: Profile, row: ForwardingOutbox, receipt_no: str, at: datetime
) -> None:
    """The province has this version: show its receipt and move a waiting case to received."""
    if row.kind == "withdraw":
        return
    take_write_lock(session, Application.__table__, Application.id == row.application_id)
    app = session.scalar(
        select(Application)
        .where(Application.id == row.application_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if app is not None:
        receipt_on(session, profile, row, app, receipt_no, at)


def receipt_on(
    session: Session, profile: Profile, row: ForwardingOutbox, app: Application, receipt_no: str, at: datetime
) -> None:
    """record_receipt on the application `app`, locked by the caller."""
    if row.kind == "withdraw" or app.submission_version != row.submission_version:
        return
    app.province_receipt_no = receipt_no
    app.province_received_at = at
    if app.status in (states.SUBMITTED, states.RESUBMITTED):
        transitions.apply(
            session, app, states.RECEIVED, actor_type="province", actor_id=profile.name,
            note=f"回执号 {receipt_no}", external_id=f"{profile.name}:receipt:{row.submission_version}",
        )  # fmt: skip


def backoff(attempt: int, base: float, cap: float, rand: float) -> float:
    """Capped exponential backoff with full jitter over the upper half; `rand` in [0, 1)."""
    # The exponent is bounded: a row failing for days reaches attempt 1,000 and more, and 2**1024
    # does not fit a float (the cap is long reached by then).
    ceiling = min(cap, base * (2 ** min(max(0, attempt - 1), 32)))
    return ceiling / 2 + rand * ceiling / 2


_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class FormFields:
    """The form's fields a body sent, for `_quoted`: name in the body -> the field's schema, and
    the whole form's schema (for `$ref`s)."""

    leaves: dict[str, Any]
    root: dict[str, Any]


def _quoted(body: dict[str, Any], fields: FormFields | None = None) -> list[str]:
    """What a refusal may quote back of the personal data a body sent, to mask where the
    reason is kept: the applicant's name, and the form's values written in Chinese (names,
    addresses, employers) or holding an e-mail address, inside lists and their objects too (a
    family member's name). ID and phone numbers are left to the patterns (masked in their usual
    shape); codes and the form's other values stay readable: they are what an operator needs to
    see what was refused. So do the values of fields the catalog marked readable
    (`"x-readable": true`) whose schema (`fields`) only allows the catalog's own values (enum,
    const, boolean, a choice of consts, a list of those: "本市户籍"). A listed choice without the
    mark (婚姻状况, 民族) is masked like anything the citizen wrote, and so is a value whose field
    is not known."""
    applicant = body.get("applicant")
    applicant = applicant if isinstance(applicant, dict) else {}
    values = [applicant["name"]] if isinstance(applicant.get("name"), str) else []
    form = body.get("form")
    form = form if isinstance(form, dict) else {}  # a correction stored before objects were checked
    leaves = fields.leaves if fields is not None else {}
    root = fields.root if fields is not None else {}
    pending: list[tuple[Any, Any, int]] = [(value, leaves.get(name), 0) for name, value in form.items()]
    while pending:
        item, schema, depth = pending.pop()
        schema = resolve_ref(root, schema) if schema is not None else None
        if schema is not None and _readable_choice(root, schema):
            continue
        if isinstance(item, str):
            if _CJK.search(item) or "@" in item:
                values.append(item)
        elif depth < _QUOTED_DEPTH and isinstance(item, dict):
            props = schema.get("properties") if isinstance(schema, dict) else None
            props = props if isinstance(props, dict) else {}
            pending.extend((v, props.get(k), depth + 1) for k, v in item.items())
        elif depth < _QUOTED_DEPTH and isinstance(item, list):
            of = schema.get("items") if isinstance(schema, dict) else None
            pending.extend((v, of if isinstance(of, dict) else None, depth + 1) for v in item)
    return values


def _readable_choice(root: dict[str, Any], schema: Any) -> bool:
    """Whether the catalog marked a field readable in refusals (`"x-readable": true` on its
    schema) and the field only takes values its schema lists. Listing the choices is not enough:
    a marital status, an ethnicity or a religion is a listed choice and sensitive personal
    information all the same (GB/T 35273), so it stays masked unless the catalog says otherwise."""
    schema = resolve_ref(root, schema)
    return isinstance(schema, dict) and schema.get("x-readable") is True and _fixed_choice(root, schema)


def _fixed_choice(root: dict[str, Any], schema: Any, depth: int = 0) -> bool:
    """Whether a field only takes values its schema lists: enum, const, boolean, oneOf/anyOf
    of such, or an array of such."""
    schema = resolve_ref(root, schema)
    if not isinstance(schema, dict) or depth > 8:
        return False
    if "enum" in schema or "const" in schema:
        return True
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
    if kinds and all(k in ("boolean", "null") for k in kinds):
        return True
    for keyword in ("oneOf", "anyOf"):
        choices = schema.get(keyword)
        if isinstance(choices, list) and choices and all(_fixed_choice(root, c, depth + 1) for c in choices):
            return True
    if "array" in kinds and isinstance(schema.get("items"), dict):
        return _fixed_choice(root, schema["items"], depth + 1)
    return False


# Bounds the walk as the request parser bounds any JSON body's nesting (api.json_body.MAX_DEPTH):
# a list value's items nest as deep as the citizen's JSON did, an operator's correction too.
_QUOTED_DEPTH = 64


def mark_case_views(session: Session, application_id: str) -> None:
    """Drop the citizen's cached views of this case (its detail and the account's list) after
    the commit: whether its forwarding is dead ("delayed") is shown in both."""
    profile_cache.mark_application_changed(session, application_id)
    account_id = session.scalar(select(Application.account_id).where(Application.id == application_id))
    if account_id is not None:
        profile_cache.mark_changed(session, account_id)
