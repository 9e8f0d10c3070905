"""Shared part of the applications state machine: the bundle of cases, the bound environment,
the model, helpers both sides use, teardown, and the invariants read from the database after
every step (see test_state_machine.py for the whole picture)."""

from __future__ import annotations

from typing import Any

from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.db import db
from domain.applications import states
from domain.applications.models import Application, ApplicationEvent, ForwardingOutbox
from tests.api.v1.applications.case_model import HANDLER_ACTORS, Case, Form, expect
from tests.api.v1.applications.conftest import URL

# The one bundle of case ids; the rule mixins draw from it and add to it.
CASES = Bundle("cases")


class MachineBase(RuleBasedStateMachine):
    """Random API actions on cases and a model of them. The test binds it to its client,
    citizens, operator and clock through `env` (fixtures are per test function, examples many)."""

    env: dict[str, Any] = {}
    cases = CASES

    def __init__(self) -> None:
        super().__init__()
        self.client = self.env["client"]
        self.citizens: list[dict] = self.env["citizens"]
        self.officer: dict = self.env["officer"]
        self.forms: dict[str, Form] = self.env["forms"]
        self.clock = self.env["clock"]
        self.started = self.clock.time()
        self.model: dict[str, Case] = {}
        # Every case number the test saw issued (examples delete their cases when they end).
        self.issued: dict[str, str] = self.env["case_numbers"]

    def teardown(self) -> None:
        """Leave nothing behind that the next example could see: a new draft prefills from the
        account's latest submitted application, so a replayed example would otherwise behave
        differently. The clock goes back to where the example started."""
        if self.model:
            ids = list(self.model)
            with Session(db.engine) as s:
                s.execute(delete(ForwardingOutbox).where(ForwardingOutbox.application_id.in_(ids)))
                s.execute(delete(Application).where(Application.id.in_(ids)))  # events, materials cascade
                s.commit()
        self.clock.advance(self.started - self.clock.time())

    # --- helpers ----------------------------------------------------------------------------

    def owner(self, case: Case) -> dict:
        return self.citizens[case.owner]

    def intruder(self, case: Case) -> dict:
        return self.citizens[1 - case.owner]

    def check_view(self, case: Case, body: dict) -> None:
        """A full application body as the owner sees it agrees with the model."""
        assert body["id"] == case.id
        assert body["status"] == case.status
        assert body["revision"] == case.revision
        assert body["submission_version"] == case.submission_version
        assert body["case_number"] == case.case_number
        assert body.get("result") == case.result
        editable = (
            "all"
            if case.status == states.DRAFT
            else case.supplement_fields()
            if case.status == states.SUPPLEMENT_REQUESTED
            else []
        )
        assert body["editable_fields"] == editable
        if case.status == states.SUPPLEMENT_REQUESTED:
            assert body["supplement"]["answered"] is case.supplement_answered
        assert {m["id"]: m["satisfied"] for m in body["materials"]} == {
            m: m in case.uploaded for m in case.materials
        }

    def gone(self, resp: Any) -> None:
        expect(resp, 404, "application.not_found")

    def _read(self, case: Case) -> None:
        who = self.owner(case)
        resp = self.client.get(f"{URL}/{case.id}", headers=who["headers"])
        timeline = self.client.get(f"{URL}/{case.id}/timeline", headers=who["headers"])
        self.check_view(case, expect(resp, 200))
        assert resp.headers["ETag"] == f'"r{case.revision}"'
        events = expect(timeline, 200)["events"]
        assert [e["status"] for e in events] == case.history
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    def live(self) -> int:
        return sum(1 for c in self.model.values() if not c.deleted and c.status not in states.FINAL)

    # --- invariants, read from the database -------------------------------------------------

    @invariant()
    def database_agrees(self) -> None:
        if not self.model:
            return
        ids = list(self.model)
        with Session(db.engine) as s:
            rows = {a.id: a for a in s.scalars(select(Application).where(Application.id.in_(ids)))}
            timelines: dict[str, list[Any]] = {}
            for e in s.execute(
                select(ApplicationEvent)
                .where(ApplicationEvent.application_id.in_(ids))
                .order_by(ApplicationEvent.application_id, ApplicationEvent.seq)
            ).scalars():
                timelines.setdefault(e.application_id, []).append(e)
            outbox: dict[str, list[ForwardingOutbox]] = {}
            for o in s.scalars(select(ForwardingOutbox).where(ForwardingOutbox.application_id.in_(ids))):
                outbox.setdefault(o.application_id, []).append(o)
            numbers = list(
                s.scalars(select(Application.case_number).where(Application.case_number.is_not(None)))
            )
        # One case number per application, unique across all applications.
        assert len(numbers) == len(set(numbers)), sorted(numbers)
        for app_id, case in self.model.items():
            row = rows.get(app_id)
            if case.deleted:
                assert row is None and app_id not in timelines and app_id not in outbox, app_id
                continue
            assert row is not None, app_id
            assert (row.status, row.revision, row.submission_version, row.case_number, row.result) == (
                case.status, case.revision, case.submission_version, case.case_number, case.result,
            ), app_id  # fmt: skip
            # No transition outside the machine, each by its actor, as the model saw them.
            events = timelines.get(app_id, [])
            assert [e.seq for e in events] == list(range(1, len(events) + 1)), app_id
            assert (events[0].from_status, events[0].to_status) == (None, states.DRAFT), app_id
            for before, after in zip(events, events[1:], strict=False):
                pair = (after.from_status, after.to_status)
                assert after.from_status == before.to_status, (app_id, pair)
                assert pair in states.TRANSITIONS, (app_id, pair)
                if states.TRANSITIONS[pair] == states.CITIZEN:
                    assert after.actor_type == "citizen", (app_id, pair, after.actor_type)
                else:
                    assert after.actor_type in HANDLER_ACTORS, (app_id, pair, after.actor_type)
            assert [e.to_status for e in events] == case.history, app_id
            # Exactly one outbox row per submission and resubmission, one per withdrawal.
            rows_out = outbox.get(app_id, [])
            sends = sorted(
                (o.submission_version, o.kind) for o in rows_out if o.kind in ("submit", "resubmit")
            )
            assert sends == [
                (v, "submit" if v == 1 else "resubmit") for v in range(1, row.submission_version + 1)
            ]
            assert all(o.case_number == row.case_number for o in rows_out), app_id
            # Nothing is forwarded here (no send attempted): a withdrawal cancels the case's sends,
            # and is itself sent only once the province has spoken of the case.
            withdrawals = [o for o in rows_out if o.kind == "withdraw"]
            heard = row.status == states.WITHDRAWN and case.history[-2] != states.SUBMITTED
            assert len(withdrawals) == (1 if heard else 0), app_id
            unsent = {o.state for o in rows_out if o.kind != "withdraw"}
            assert unsent <= ({"cancelled"} if row.status == states.WITHDRAWN else {"pending"}), app_id
            assert len(rows_out) == len(sends) + len(withdrawals), app_id
