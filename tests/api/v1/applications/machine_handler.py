"""The handling side of the applications state machine: an operator records random stages, and
every move the machine refuses from a case's status is tried (by either side)."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import rule

from domain.applications import states
from tests.api.v1.applications.case_model import NOT_A_TARGET, Case, expect
from tests.api.v1.applications.conftest import URL
from tests.api.v1.applications.machine_base import CASES as cases
from tests.api.v1.applications.machine_base import MachineBase


class HandlerRules(MachineBase):
    """Rules and helpers that act as the case operator (and the refused moves of both sides)."""

    @rule(case_id=cases, data=st.data())
    def stage(self, case_id: str, data: st.DataObject) -> None:
        """An operator records a stage on any case, often an allowed one."""
        self._stage(self.model[case_id], data)

    def _stage(self, case: Case, data: st.DataObject, *, to: str | None = None) -> None:
        """Record a stage (`to`, or a random one: often allowed, else outside the machine)."""
        form = self.forms[case.target]
        forced = to is not None
        if to is None:
            legal = sorted(
                dst
                for (src, dst), who in states.TRANSITIONS.items()
                if src == case.status and who == states.HANDLER
            )
            if legal and data.draw(st.integers(0, 9), label="pick") < 6:
                to = data.draw(st.sampled_from(legal), label="allowed target")
            else:
                refused = sorted(states.HANDLER_TARGETS - set(legal)) + list(NOT_A_TARGET)
                to = data.draw(st.sampled_from(refused), label="refused target")
        body: dict[str, Any] = {"to": to, "note": "测试"}
        fields: list[str] = []
        materials: list[str] = []
        if to == states.SUPPLEMENT_REQUESTED:
            editable = sorted(p for p in form.leaves if p not in case.read_only)
            fields = data.draw(
                st.lists(st.sampled_from(editable), min_size=int(forced), max_size=3, unique=True)
            )
            materials = data.draw(st.lists(st.sampled_from(sorted(case.materials)), max_size=2, unique=True))
            if not forced and data.draw(st.integers(0, 9), label="unknown field") == 0:
                fields.append("no_such_group.x")
            if not forced and case.read_only and data.draw(st.integers(0, 9), label="verified field") == 0:
                fields.append(sorted(case.read_only)[0])  # the citizen could never change it
            body |= {"fields": fields, "materials": materials}
        result = None
        if to == states.COMPLETED:
            result = data.draw(st.sampled_from(["approved", "denied", None]), label="result")
            if result is not None:
                body["result"] = result
        resp = self.client.post(f"/admin/v1/applications/{case.id}/stages", json=body, headers=self.officer)
        if to not in states.HANDLER_TARGETS:
            expect(resp, 422, "request.validation_failed")
            return
        if not states.allowed(case.status, to, states.HANDLER, accepted=case.accepted):
            expect(resp, 409, "application.illegal_transition")
            return
        if to == states.SUPPLEMENT_REQUESTED and (
            not (fields or materials) or any(f not in form.leaves or f in case.read_only for f in fields)
        ):
            expect(resp, 422, "application.invalid_patch")
            return
        if to == states.COMPLETED and result is None:
            expect(resp, 422, "application.invalid_patch")
            return
        answer = expect(resp, 200)
        case.move(to)
        if to == states.SUPPLEMENT_REQUESTED:
            case.ask_supplement(list(form.leaves), fields, materials)
        if to == states.COMPLETED:
            case.result = result
        assert answer["status"] == to and answer["case_number"] == case.case_number
        event(f"handler → {to}")

    @rule(case_id=cases)
    def refused_moves(self, case_id: str) -> None:
        self._refuse_all(self.model[case_id])

    def _refuse_all(self, case: Case) -> None:
        """Every move the machine does not allow from the case's status is refused: each
        handling stage (with a well-formed body, so only the machine can refuse it), and the
        citizen's submit and withdraw. The invariants then check nothing changed."""
        for to in sorted(states.HANDLER_TARGETS):
            if states.allowed(case.status, to, states.HANDLER, accepted=case.accepted):
                continue
            body: dict[str, Any] = {"to": to}
            if to == states.SUPPLEMENT_REQUESTED:
                body["materials"] = list(case.materials)[:1]
            if to == states.COMPLETED:
                body["result"] = "approved"
            resp = self.client.post(
                f"/admin/v1/applications/{case.id}/stages", json=body, headers=self.officer
            )
            expect(resp, 409, "application.illegal_transition")
        headers = self.owner(case)["headers"]
        if not case.may_withdraw():
            resp = self.client.post(f"{URL}/{case.id}/withdraw", json={}, headers=headers)
            expect(resp, 409, "application.illegal_transition")
        if case.status not in states.EDITABLE:
            consent = {"accepted": True, "text_version": case.text_version}
            resp = self.client.post(
                f"{URL}/{case.id}/submit", json={"consent": consent},
                headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
            )  # fmt: skip
            expect(resp, 409, "application.illegal_transition")
            resp = self.client.patch(
                f"{URL}/{case.id}", json={"data": {}}, headers=headers | {"If-Match": f'"r{case.revision}"'}
            )
            expect(resp, 409, "application.not_editable")
