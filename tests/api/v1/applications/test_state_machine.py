"""A hypothesis state machine drives random sequences of API actions on applications.

Citizens create drafts (a social security card, a passport, the newborn bundle), autosave valid
and invalid patches (stale or missing If-Match, read-only, locked and unknown fields), upload
materials, submit and resubmit with fresh, reused or another case's Idempotency-Keys, withdraw
and delete drafts; an operator records random handling stages; walks make allowed moves by
either side so examples reach deep into the machine; every move the machine refuses from a
case's status is tried; another account pokes at the cases. A model keeps what every case
should look like, each response is checked against it and against `states.TRANSITIONS`, and
after every step the database must show:

- one case number per application: set on the first submission, never changed, unique;
- no transition outside the machine: the timeline starts with (None → draft), every later event
  is an allowed move by the right actor, and it matches the moves the model saw succeed;
- exactly one outbox row per submission and resubmission (versions 1..n, n = submission_version),
  and one withdrawal row once withdrawn;
- status, revision, submission version and result as the model says, so a refused move
  changed nothing.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.db import db
from domain.applications import states
from domain.applications.models import Application, ApplicationEvent, ForwardingOutbox
from tests.api.v1.applications.case_model import (
    HANDLER_ACTORS,
    INVALID_VALUE,
    MAX_LIVE,
    MOVE_WEIGHTS,
    NOT_A_TARGET,
    SETTINGS,
    TARGETS,
    Case,
    Form,
    expect,
    load_form,
    merge_patch,
    nest,
    valid_values,
)
from tests.api.v1.applications.conftest import URL, jpeg, upload, verified


class CaseMachine(RuleBasedStateMachine):
    """Random API actions on cases and a model of them. The test binds it to its client,
    citizens, operator and clock through `env` (fixtures are per test function, examples many)."""

    env: dict[str, Any] = {}
    cases = Bundle("cases")

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
            else (case.supplement or {}).get("fields", [])
            if case.status == states.SUPPLEMENT_REQUESTED
            else []
        )
        assert body["editable_fields"] == editable
        assert {m["id"]: m["satisfied"] for m in body["materials"]} == {
            m: m in case.uploaded for m in case.materials
        }

    def gone(self, resp: Any) -> None:
        expect(resp, 404, "application.not_found")

    # --- citizen actions --------------------------------------------------------------------

    def live(self) -> int:
        return sum(1 for c in self.model.values() if not c.deleted and c.status not in states.FINAL)

    @initialize(
        target=cases,
        owner=st.integers(0, 1),
        target_names=st.lists(st.sampled_from(sorted(TARGETS)), min_size=2, max_size=2),
        steps=st.lists(st.integers(0, 12), min_size=2, max_size=2),
        data=st.data(),
    )
    def start(self, owner: int, target_names: list[str], steps: list[int], data: st.DataObject) -> Any:
        """Every example starts with a case of each citizen, walked some allowed moves along, so
        the rules start from anywhere in the machine (swarm testing turns whole rules off in
        some examples, and twenty steps are few to walk the whole way)."""
        ids = [self.create(who, name) for who, name in zip((owner, 1 - owner), target_names, strict=True)]
        for case_id, count in zip(ids, steps, strict=True):
            self._walk(self.model[case_id], count, data, withdraw=False)
            self._refuse_all(self.model[case_id])
        return multiple(*ids)

    @rule(case_id=cases, steps=st.integers(1, 5), data=st.data())
    def walk(self, case_id: str, steps: int, data: st.DataObject) -> None:
        """Either side makes allowed moves: submit or resubmit (after completing the form),
        withdraw, or a handling stage."""
        self._walk(self.model[case_id], steps, data)

    def _walk(self, case: Case, steps: int, data: st.DataObject, *, withdraw: bool = True) -> None:
        for _ in range(steps):
            moves = [
                dst
                for (src, dst) in states.TRANSITIONS
                if src == case.status and (withdraw or dst != states.WITHDRAWN)
            ]
            if not moves:
                return
            # Weighted towards the long way round: withdrawing ends the walk, and a supplement
            # request opens the resubmission.
            moves = [m for m in moves for _ in range(MOVE_WEIGHTS.get(m, 3))]
            to = data.draw(st.sampled_from(sorted(moves)), label="move")
            if to == states.WITHDRAWN:
                self._withdraw(case)
            elif states.allowed(case.status, to, states.CITIZEN):
                self._complete(case, True, data)
                self._submit(case, "fresh", "ok", data)
            else:
                self._stage(case, data, to=to)

    @precondition(lambda self: self.live() < MAX_LIVE)
    @rule(target=cases, owner=st.integers(0, 1), target_name=st.sampled_from(sorted(TARGETS)))
    def create(self, owner: int, target_name: str) -> str:
        who = self.citizens[owner]
        body = expect(self.client.post(URL, json=TARGETS[target_name], headers=who["headers"]), 201)
        prefilled = sorted(body["provenance"])
        if target_name not in self.forms:
            self.forms[target_name] = load_form(self.client, who, body["id"], prefilled)
        form = self.forms[target_name]
        case = Case(
            id=body["id"], owner=owner, target=target_name, text_version=body["consent"]["text_version"],
            data=nest({p: valid_values(form.leaves[p])[0] for p in prefilled}),
            read_only=frozenset(p for p, prov in body["provenance"].items() if prov.get("read_only")),
            materials={m["id"]: m["requirement"] for m in body["materials"]},
        )  # fmt: skip
        self.check_view(case, body)
        self.model[case.id] = case
        return case.id

    def _patch(self, case: Case, flat: dict[str, Any], *, valid: set[str], if_match: str | None) -> None:
        """Send a merge patch touching the leaves in `flat`; `valid` names the entries whose value
        (or removal) the leaf's schema accepts. Checks the outcome against the model."""
        form = self.forms[case.target]
        headers = self.owner(case)["headers"] | ({"If-Match": if_match} if if_match is not None else {})
        patch = nest(flat)
        resp = self.client.patch(f"{URL}/{case.id}", json={"data": patch}, headers=headers)
        if if_match is None:
            expect(resp, 428, "application.if_match_required")
            return
        if if_match != f'"r{case.revision}"':
            body = expect(resp, 412, "application.version_conflict")
            assert body["error"]["details"]["current_revision"] == case.revision
            return
        if case.status not in states.EDITABLE:
            expect(resp, 409, "application.not_editable")
            return
        known = [p for p in flat if p in form.leaves]
        allowed = set(case.supplement["fields"]) if case.status == states.SUPPLEMENT_REQUESTED else None
        if any(p in case.read_only for p in known):
            expect(resp, 422, "application.field_read_only")
        elif allowed is not None and any(p not in allowed for p in known):
            expect(resp, 422, "application.field_locked")
        elif len(known) < len(flat) or any(p not in valid for p in flat):
            expect(resp, 422, "application.invalid_patch")
        else:
            body = expect(resp, 200)
            case.data = merge_patch(case.data, patch)
            case.revision += 1
            self.check_view(case, body)
            assert resp.headers["ETag"] == f'"r{case.revision}"'

    @rule(
        case_id=cases,
        kind=st.sampled_from(
            ["valid", "valid", "remove", "invalid", "unknown", "read_only", "stale", "none"]
        ),
        data=st.data(),
    )
    def patch(self, case_id: str, kind: str, data: st.DataObject) -> None:
        case = self.model[case_id]
        form = self.forms[case.target]
        editable = sorted(p for p in form.leaves if p not in case.read_only)
        if case.status == states.SUPPLEMENT_REQUESTED and data.draw(st.booleans(), label="named only"):
            editable = sorted(case.supplement["fields"]) or editable
        if_match: str | None = f'"r{case.revision}"'
        if kind in ("valid", "stale", "none"):
            paths = data.draw(st.lists(st.sampled_from(editable), min_size=1, max_size=3, unique=True))
            flat = {p: data.draw(st.sampled_from(valid_values(form.leaves[p]))) for p in paths}
            if kind == "stale":
                if_match = f'"r{case.revision + data.draw(st.sampled_from([-1, 1, 7]), label="off by")}"'
            elif kind == "none":
                if_match = None
        elif kind == "remove":
            flat = {data.draw(st.sampled_from(editable), label="leaf"): None}
        elif kind == "invalid":
            flat = {data.draw(st.sampled_from(editable), label="leaf"): INVALID_VALUE}
        elif kind == "unknown":
            flat = {data.draw(st.sampled_from(["applicant.nickname", "no_such_group.x"])): "x"}
        else:
            if not case.read_only:
                return
            path = data.draw(st.sampled_from(sorted(case.read_only)), label="leaf")
            flat = {path: valid_values(form.leaves[path])[-1]}
        valid = {p for p, v in flat.items() if v is not INVALID_VALUE}
        self._patch(case, flat, valid=valid, if_match=if_match)

    @rule(case_id=cases, materials_too=st.sampled_from([True, True, True, False]), data=st.data())
    def complete(self, case_id: str, materials_too: bool, data: st.DataObject) -> None:
        self._complete(self.model[case_id], materials_too, data)

    def _complete(self, case: Case, materials_too: bool, data: st.DataObject) -> None:
        """What a phone does after a 422: fill every required field still missing (one autosave)
        and upload every required material still missing."""
        form = self.forms[case.target]
        flat = form.fill(case.data, data.draw(st.integers(0, 7), label="fill seed"))
        self._patch(case, flat, valid=set(flat), if_match=f'"r{case.revision}"')
        if materials_too:
            todo = [m for m, req in case.materials.items() if req == "required" and m not in case.uploaded]
            for material in todo:
                self._upload(case, material)

    def _upload(self, case: Case, material: str) -> None:
        resp = upload(self.client, self.owner(case), case.id, material, self.env["jpeg"])
        if material not in case.materials:
            expect(resp, 404, "application.material_unknown")
        elif case.status == states.DRAFT or (
            case.status == states.SUPPLEMENT_REQUESTED and material in case.supplement["materials"]
        ):
            body = expect(resp, 201)
            assert body["material_id"] == material
            case.uploaded.add(material)
        else:
            expect(resp, 409, "application.material_locked")

    @rule(case_id=cases, which=st.sampled_from(["one", "one", "unknown"]), data=st.data())
    def upload_material(self, case_id: str, which: str, data: st.DataObject) -> None:
        case = self.model[case_id]
        if which == "one":
            self._upload(case, data.draw(st.sampled_from(sorted(case.materials)), label="material"))
        else:
            self._upload(case, "no_such_material")

    @rule(
        case_id=cases,
        key_mode=st.sampled_from(["fresh", "fresh", "fresh", "reuse", "reuse", "foreign", "none"]),
        consent=st.sampled_from(["ok", "ok", "ok", "ok", "ok", "missing", "refused", "stale"]),
        prepare=st.sampled_from([True, True, False]),
        data=st.data(),
    )
    def submit(self, case_id: str, key_mode: str, consent: str, prepare: bool, data: st.DataObject) -> None:
        """Submit or resubmit; usually after completing the form (swarm testing may turn the
        `complete` rule off for a whole example)."""
        case = self.model[case_id]
        if prepare and case.status in states.EDITABLE:
            self._complete(case, True, data)
        self._submit(case, key_mode, consent, data)

    def _submit(self, case: Case, key_mode: str, consent: str, data: st.DataObject) -> None:
        # Submissions a second apart: prefill reads the latest one (a frozen clock would tie them).
        self.clock.advance(1)
        payload: dict[str, Any] = {}
        if consent != "missing":
            version = case.text_version if consent != "stale" else "share-000000000000"
            payload["consent"] = {"accepted": consent != "refused", "text_version": version}
        raw = json.dumps(payload).encode()
        key = uuid.uuid4().hex
        if key_mode == "reuse" and case.keys:
            key = data.draw(st.sampled_from(list(case.keys)), label="reused key")
            stored = case.keys[key]
            if stored is not None and data.draw(st.booleans(), label="same body"):
                raw = stored[0]
        elif key_mode == "foreign":
            # A key that answered the same account for another case: keys are scoped to the
            # path, so this submission runs as new (neither a replay nor "key reused").
            used = [
                k for c in self.model.values() if c is not case and c.owner == case.owner
                for k, v in c.keys.items() if v is not None and k not in case.keys
            ]  # fmt: skip
            if used:
                key = data.draw(st.sampled_from(used), label="foreign key")
        headers = self.owner(case)["headers"] | {"Content-Type": "application/json"}
        if key_mode != "none":
            headers["Idempotency-Key"] = key
        resp = self.client.post(f"{URL}/{case.id}/submit", data=raw, headers=headers)
        if key_mode == "none":
            expect(resp, 428, "idempotency.key_required")
            return
        stored = case.keys.get(key)
        if stored is not None:
            if raw == stored[0]:
                expect(resp, 200)
                assert resp.headers.get("Idempotent-Replayed") == "true"
                assert resp.get_data() == stored[1]
                event("submit replayed")
            else:
                expect(resp, 422, "idempotency.key_reused")
                event("submit key reused")
            return
        assert resp.headers.get("Idempotent-Replayed") is None
        case.keys[key] = None
        if case.status not in (states.DRAFT, states.SUPPLEMENT_REQUESTED):
            expect(resp, 409, "application.illegal_transition")
            return
        first = case.status == states.DRAFT
        ready = self.forms[case.target].is_valid(case.data) and case.materials_complete()
        if not (ready and (consent == "ok" or not first)):
            body = expect(resp, 422, "application.invalid")
            assert body["error"]["fields"], body
            return
        body = expect(resp, 200)
        case.move(states.SUBMITTED if first else states.RESUBMITTED)
        case.submission_version += 1
        case.supplement = None
        if first:
            assert body["case_number"], body
            assert body["case_number"] not in self.issued, (
                body["case_number"],
                self.issued.get(body["case_number"]),
            )
            case.case_number = body["case_number"]
            self.issued[case.case_number] = case.id
        self.check_view(case, body)
        case.keys[key] = (raw, resp.get_data())
        event(f"citizen → {case.status}")

    @rule(case_id=cases)
    def withdraw(self, case_id: str) -> None:
        self._withdraw(self.model[case_id])

    def _withdraw(self, case: Case) -> None:
        resp = self.client.post(
            f"{URL}/{case.id}/withdraw", json={"reason": "不办了"}, headers=self.owner(case)["headers"]
        )
        if not states.allowed(case.status, states.WITHDRAWN, states.CITIZEN):
            expect(resp, 409, "application.illegal_transition")
            return
        body = expect(resp, 200)
        case.move(states.WITHDRAWN)
        case.supplement = None
        self.check_view(case, body)
        event("citizen → withdrawn")

    @rule(target=cases, case_id=consumes(cases))
    def delete_draft(self, case_id: str) -> Any:
        """Discard a draft; a deleted case leaves the bundle (and is "not found" from then on)."""
        case = self.model[case_id]
        who = self.owner(case)
        resp = self.client.delete(f"{URL}/{case.id}", headers=who["headers"])
        if case.status != states.DRAFT:
            expect(resp, 409, "application.illegal_transition")
            return case_id
        expect(resp, 204)
        case.deleted = True
        url = f"{URL}/{case.id}"
        self.gone(self.client.get(url, headers=who["headers"]))
        self.gone(self.client.delete(url, headers=who["headers"]))
        self.gone(self.client.patch(url, json={"data": {}}, headers=who["headers"] | {"If-Match": '"r1"'}))
        self.gone(
            self.client.post(f"{url}/submit", json={}, headers=who["headers"] | {"Idempotency-Key": "k"})
        )
        self.gone(
            self.client.post(
                f"/admin/v1/applications/{case.id}/stages", json={"to": "received"}, headers=self.officer
            )
        )
        return multiple()

    @rule(
        case_id=cases,
        action=st.sampled_from(
            ["own", "own", "get", "timeline", "form", "patch", "upload", "submit", "withdraw", "delete"]
        ),
    )
    def observe(self, case_id: str, action: str) -> None:
        """The owner reads the case and its timeline, or another account tries something on it."""
        case = self.model[case_id]
        if action == "own":
            self._read(case)
        else:
            self._intrude(case, action)

    def _read(self, case: Case) -> None:
        who = self.owner(case)
        resp = self.client.get(f"{URL}/{case.id}", headers=who["headers"])
        timeline = self.client.get(f"{URL}/{case.id}/timeline", headers=who["headers"])
        self.check_view(case, expect(resp, 200))
        assert resp.headers["ETag"] == f'"r{case.revision}"'
        events = expect(timeline, 200)["events"]
        assert [e["status"] for e in events] == case.history
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    def _intrude(self, case: Case, action: str) -> None:
        """Someone else's application is "not found", whatever they try; nothing changes."""
        who = self.intruder(case)
        headers = who["headers"]
        url = f"{URL}/{case.id}"
        if action in ("get", "timeline", "form"):
            resp = self.client.get(url if action == "get" else f"{url}/{action}", headers=headers)
        elif action == "patch":
            resp = self.client.patch(
                url, json={"data": {"delivery": {"method": "window"}}},
                headers=headers | {"If-Match": f'"r{case.revision}"'},
            )  # fmt: skip
        elif action == "upload":
            resp = upload(self.client, who, case.id, next(iter(case.materials)), self.env["jpeg"])
        elif action == "submit":
            # With the key and body the owner used, if any: another account gets no replay.
            key, raw = next(
                ((k, v[0]) for k, v in case.keys.items() if v is not None),
                (
                    uuid.uuid4().hex,
                    json.dumps({"consent": {"accepted": True, "text_version": case.text_version}}),
                ),
            )
            resp = self.client.post(
                f"{url}/submit", data=raw,
                headers=headers | {"Idempotency-Key": key, "Content-Type": "application/json"},
            )  # fmt: skip
            assert resp.headers.get("Idempotent-Replayed") is None
        elif action == "withdraw":
            resp = self.client.post(f"{url}/withdraw", json={}, headers=headers)
        else:
            resp = self.client.delete(url, headers=headers)
        self.gone(resp)

    # --- the handling side ------------------------------------------------------------------

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
            fields = data.draw(
                st.lists(st.sampled_from(sorted(form.leaves)), min_size=int(forced), max_size=3, unique=True)
            )
            materials = data.draw(st.lists(st.sampled_from(sorted(case.materials)), max_size=2, unique=True))
            if not forced and data.draw(st.integers(0, 9), label="unknown field") == 0:
                fields.append("no_such_group.x")
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
        if not states.allowed(case.status, to, states.HANDLER):
            expect(resp, 409, "application.illegal_transition")
            return
        if to == states.SUPPLEMENT_REQUESTED and (
            not (fields or materials) or any(f not in form.leaves for f in fields)
        ):
            expect(resp, 422, "application.invalid_patch")
            return
        if to == states.COMPLETED and result is None:
            expect(resp, 422, "application.invalid_patch")
            return
        answer = expect(resp, 200)
        case.move(to)
        if to == states.SUPPLEMENT_REQUESTED:
            case.supplement = {"fields": fields, "materials": materials}
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
            if states.allowed(case.status, to, states.HANDLER):
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
        if not states.allowed(case.status, states.WITHDRAWN, states.CITIZEN):
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
            withdrawals = [o for o in rows_out if o.kind == "withdraw"]
            assert len(withdrawals) == (1 if row.status == states.WITHDRAWN else 0), app_id
            assert len(rows_out) == len(sends) + len(withdrawals), app_id


def test_random_api_sequences_keep_the_case_invariants(app, client, seeded, officer, clock):
    env = {
        "clock": clock,
        "client": client,
        "citizens": [verified(app, 0), verified(app, 1)],
        "officer": officer,
        "forms": {},
        "case_numbers": {},
        "jpeg": jpeg(),
    }
    machine = type("BoundCaseMachine", (CaseMachine,), {"env": env})
    run_state_machine_as_test(machine, settings=SETTINGS)
