"""The model behind the applications state-machine test: targets, valid and invalid values,
the form a case fills, what a case should look like, and response checks."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator, FormatChecker

from domain.applications import states
from domain.catalog.form_schema import leaf_fields
from tests.api.v1.applications.conftest import NEWBORN, PASSPORT, SS_CARD, URL

TARGETS = {
    "ss_card": {"service_code": SS_CARD},
    "passport": {"service_code": PASSPORT},
    "newborn": {"bundle_id": NEWBORN},
}
# Values that satisfy the patterns the seeded forms use (a new pattern fails the form self-check).
PATTERN_VALUES = {
    r"^\d{17}[\dX]$": ["44010619900307451X", "110101199003074518"],
    r"^1[3-9]\d{9}$": ["13800138000", "15912345678"],
    r"^\d{6}$": ["440106", "440103"],
    r"^[A-Z]\d{9}$": ["M440123456", "N123456789"],
}
TEXT = "广州市天河区体育西路一号测试填写内容"
INVALID_VALUE = ["not", "a", "scalar"]  # every leaf of the seeded forms is a scalar
MAX_LIVE = 3  # open cases per example: more steps go into moving them than into creating
MOVE_WEIGHTS = {states.WITHDRAWN: 2, states.SUPPLEMENT_REQUESTED: 4}
NOT_A_TARGET = ("draft", "submitted", "resubmitted", "withdrawn", "closed")
HANDLER_ACTORS = ("operator", "province", "system")

SETTINGS = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- form helpers ---------------------------------------------------------------------------


def valid_values(leaf: dict[str, Any]) -> list[Any]:
    """A few values the leaf's own schema accepts."""
    if "enum" in leaf:
        return list(leaf["enum"])
    kind = leaf.get("type")
    if kind == "boolean":
        return [True, False]
    if kind in ("integer", "number"):
        lo, hi = leaf.get("minimum", 0), leaf.get("maximum", leaf.get("minimum", 0) + 100)
        return [lo, hi, (lo + hi) // 2]
    assert kind == "string", leaf
    if "pattern" in leaf:
        return PATTERN_VALUES[leaf["pattern"]]
    if leaf.get("format") == "date":
        return ["2026-01-15", "2025-12-31"]
    assert "format" not in leaf, leaf
    lo, hi = max(leaf.get("minLength", 1), 1), leaf.get("maxLength", 100)
    return [TEXT[: min(max(lo, 6), hi)], TEXT[: min(max(lo, 12), hi)]]


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} -> {"a": {"b": 1}}: a JSON merge patch touching exactly these leaves."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, last = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396, written again here so the model does not borrow the code under test."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass(frozen=True)
class Form:
    schema: dict[str, Any]
    leaves: dict[str, dict[str, Any]]
    validator: Draft202012Validator

    def missing(self, data: dict[str, Any]) -> list[str]:
        """Leaves that must still be filled, following `required` (and if/then) down from the root."""
        out: list[str] = []
        for error in self.validator.iter_errors(data):
            if error.validator != "required" or not isinstance(error.instance, dict):
                continue
            base = ".".join(str(p) for p in error.absolute_path)
            for name in error.validator_value:
                if name in error.instance:
                    continue
                path = f"{base}.{name}" if base else name
                if path in self.leaves:
                    out.append(path)
                else:  # a missing group: the next round reports its required leaves
                    out.append(path + ".")
        return out

    def fill(self, data: dict[str, Any], seed: int) -> dict[str, Any]:
        """Flat {leaf: value} of valid values that makes `data` satisfy the schema; `seed` picks
        the values (one draw for the whole form keeps examples short)."""
        work, flat = copy.deepcopy(data), {}
        for _ in range(8):
            missing = self.missing(work)
            if not missing:
                break
            for path in missing:
                if path.endswith("."):
                    work = merge_patch(work, nest({path[:-1]: {}}))
                    continue
                values = valid_values(self.leaves[path])
                flat[path] = values[(seed + len(flat)) % len(values)]
                work = merge_patch(work, nest({path: flat[path]}))
        return flat

    def is_valid(self, data: dict[str, Any]) -> bool:
        return self.validator.is_valid(data)


def load_form(client: Any, who: dict, app_id: str, prefilled: list[str]) -> Form:
    schema = client.get(f"{URL}/{app_id}/form", headers=who["headers"]).get_json()["schema"]
    form = Form(schema, leaf_fields(schema), Draft202012Validator(schema, format_checker=FormatChecker()))
    # Self-check of the helpers: every leaf has valid and invalid values, and a fill completes.
    for path, leaf in form.leaves.items():
        for value in valid_values(leaf):
            assert form.validator.evolve(schema=leaf).is_valid(value), (path, value)
        assert not form.validator.evolve(schema=leaf).is_valid(INVALID_VALUE), path
    data = nest({p: valid_values(form.leaves[p])[0] for p in prefilled})
    assert form.is_valid(merge_patch(data, nest(form.fill(data, 0))))
    return form


# --- the model ------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    owner: int
    target: str
    text_version: str
    data: dict[str, Any]  # what the form holds (prefilled values replaced by valid stand-ins)
    read_only: frozenset[str]
    materials: dict[str, str]  # material id -> requirement
    status: str = states.DRAFT
    revision: int = 1
    submission_version: int = 0
    case_number: str | None = None
    result: str | None = None
    supplement: dict[str, list[str]] | None = None
    supplement_answered: bool = False
    uploaded: set[str] = field(default_factory=set)
    history: list[str] = field(default_factory=lambda: [states.DRAFT])
    # Idempotency-Key -> (request body, first response body) for submissions that succeeded;
    # keys of refused submissions are kept too: nothing was stored, a retry runs again.
    keys: dict[str, tuple[bytes, bytes] | None] = field(default_factory=dict)
    deleted: bool = False

    def move(self, to: str) -> None:
        self.history.append(to)
        self.status = to
        self.revision += 1

    @property
    def accepted(self) -> bool:
        """Accepted (受理) at some point: review only ever follows acceptance."""
        return states.ACCEPTED in self.history or states.IN_REVIEW in self.history

    def may_withdraw(self) -> bool:
        """The citizen withdraws only before acceptance."""
        return not self.accepted and states.allowed(self.status, states.WITHDRAWN, states.CITIZEN)

    def ask_supplement(self, leaves: list[str], fields: list[str], materials: list[str]) -> None:
        """Named fields, and the blanks of their groups: a change can make a blank required."""
        groups = {f.rpartition(".")[0] for f in fields} - {""}  # a top-level field has no group
        blanks = [
            p for p in leaves if p not in fields and p.rpartition(".")[0] in groups and not self.holds(p)
        ]
        # An operator always names something: the supplement waits for a change to one of them.
        self.supplement = {"fields": fields, "materials": materials, "blank_neighbours": blanks}
        self.supplement_answered = False

    def answer_supplement(self) -> None:
        """A change the supplement allowed went through (an autosave of an opened field, an
        upload of a named material)."""
        if self.status == states.SUPPLEMENT_REQUESTED:
            self.supplement_answered = True

    def supplement_fields(self) -> list[str]:
        return [*self.supplement["fields"], *self.supplement["blank_neighbours"]] if self.supplement else []

    def holds(self, path: str) -> bool:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return node is not None

    def materials_complete(self) -> bool:
        return all(m in self.uploaded for m, req in self.materials.items() if req == "required")


def expect(resp: Any, status: int, code: str | None = None) -> Any:
    body = resp.get_json(silent=True)
    assert resp.status_code == status, (resp.status_code, status, body)
    if code is not None:
        assert body["error"]["code"] == code, (code, body)
    return body
