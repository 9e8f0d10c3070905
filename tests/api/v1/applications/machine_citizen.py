"""The citizen side of the applications state machine: create drafts, autosave valid and invalid
patches, complete the form, upload materials, submit and resubmit with all kinds of
Idempotency-Keys, withdraw, delete drafts, read one's own case, and another account poking at it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import consumes, multiple, precondition, rule

from domain.applications import states
from tests.api.v1.applications.case_model import (
    INVALID_VALUE,
    MAX_LIVE,
    TARGETS,
    Case,
    expect,
    load_form,
    merge_patch,
    nest,
    valid_values,
)
from tests.api.v1.applications.conftest import URL, upload
from tests.api.v1.applications.machine_base import CASES as cases
from tests.api.v1.applications.machine_base import MachineBase


class CitizenRules(MachineBase):
    """Rules and helpers that act as a citizen (the owner, or another account)."""

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
        if case.status not in states.EDITABLE:  # said first: reloading would not help
            expect(resp, 409, "application.not_editable")
            return
        if if_match != f'"r{case.revision}"':
            body = expect(resp, 412, "application.version_conflict")
            assert body["error"]["details"]["current_revision"] == case.revision
            return
        known = [p for p in flat if p in form.leaves]
        allowed = set(case.supplement_fields()) if case.status == states.SUPPLEMENT_REQUESTED else None
        if any(p in case.read_only for p in known):
            expect(resp, 422, "application.field_read_only")
        elif allowed is not None and any(p not in allowed for p in known):
            expect(resp, 422, "application.field_locked")
        elif len(known) < len(flat) or any(p not in valid for p in flat):
            expect(resp, 422, "application.invalid_patch")
        else:
            body = expect(resp, 200)
            # A value given, or one held emptied, answers a supplement; a null on an empty field does not.
            if any(flat[p] is not None or case.holds(p) for p in known):
                case.answer_supplement()
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
            editable = sorted(case.supplement_fields()) or editable
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
            case.answer_supplement()
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
        # A resubmission answers the supplement only once something it named was changed.
        ready = ready and (first or case.supplement_answered)
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
        if not case.may_withdraw():
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
