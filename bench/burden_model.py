"""The burden benchmark's counts: what one draft spares the citizen, per item and phase."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks-burden.md"
TARGET = 0.60  # the reform's target: at least 60 % without typing or uploading
URL = "/v1/applications"
HALL = "天河区政务服务中心"
SOURCES = ("identity", "account", "exchange", "application")
PHASES = ("now", "after")


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says what went wrong."""


@dataclass
class Tally:
    """Fields and materials of one or more drafts."""

    drafts: int = 0
    leaves: int = 0
    filled: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    required: int = 0
    required_met: int = 0
    conditional: int = 0
    conditional_met: int = 0
    refs: Counter[str] = field(default_factory=Counter)  # kind of each reference (shared, ecert)

    def add(self, other: Tally) -> None:
        for name in ("drafts", "leaves", "filled", "required", "required_met", "conditional",
                     "conditional_met"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_source.update(other.by_source)
        self.refs.update(other.refs)

    @property
    def fields_share(self) -> float | None:
        return self.filled / self.leaves if self.leaves else None

    @property
    def required_share(self) -> float | None:
        return self.required_met / self.required if self.required else None

    @property
    def conditional_share(self) -> float | None:
        return self.conditional_met / self.conditional if self.conditional else None


@dataclass
class Item:
    code: str
    name: str
    leaves: int = 0
    bound: int = 0  # leaves bound to a prefill source
    shared_bound: int = 0  # of which to shared data (shared.*)
    required: int = 0
    accepting: int = 0  # required materials that accept an e-certificate type or a shared dataset
    tallies: dict[str, Tally] = field(default_factory=lambda: {p: Tally() for p in PHASES})
    answers: dict[str, Counter[str]] = field(default_factory=lambda: {p: Counter() for p in PHASES})
    drafts: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (app id, headers)
    # material id -> (name, requirement, accepts anything, drafts it is satisfied in after approvals)
    materials: dict[str, list[Any]] = field(default_factory=dict)
    # at submission, the product's own counters (domain/applications/burden.py)
    submitted: dict[str, int] = field(default_factory=dict)
    submit_failures: int = 0
    # of the answered fields the citizen provided: choices (options, yes/no, dates) vs free text
    answered_by_citizen: Counter[str] = field(default_factory=Counter)


def source_kind(source: str) -> str:
    """identity / account / exchange / application / user, from a provenance source."""
    if source.startswith("identity."):
        return "identity"
    if source.startswith("account."):
        return "account"
    if source.startswith("exchange:"):
        return "exchange"
    return source


def count(body: dict[str, Any], leaves: list[str]) -> Tally:
    """What one draft (the API's full view) spares its citizen."""
    t = Tally(drafts=1, leaves=len(leaves))
    provenance = body.get("provenance") or {}
    for leaf in leaves:
        source = (provenance.get(leaf) or {}).get("source", "user")
        if source != "user":
            t.filled += 1
            t.by_source[source_kind(source)] += 1
    for material in body["materials"]:
        met = bool(material["satisfied_by"])
        t.refs.update(r["kind"] for r in material["satisfied_by"])
        if material["requirement"] == "required":
            t.required, t.required_met = t.required + 1, t.required_met + met
        elif material["requirement"] == "conditional":
            t.conditional, t.conditional_met = t.conditional + 1, t.conditional_met + met
    return t


def answer_cell(ans: Counter[str]) -> str:
    """found / no record / pending (and any other status) of the datasets asked; — when none."""
    if not sum(ans.values()):
        return "—"
    main = ("found", "no_record", "pending")
    rest = "".join(f", {k} {v}" for k, v in sorted(ans.items()) if k not in main)
    return " / ".join(str(ans.get(k, 0)) for k in main) + rest


def answers(body: dict[str, Any]) -> Counter[str]:
    """How the exchange answered each dataset of this draft (found, no_record, pending, ...)."""
    sharing = body.get("data_sharing") or {}
    return Counter(str(d["status"]) for d in sharing.get("datasets") or [])
