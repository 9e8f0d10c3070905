"""`python -m bench.burden`: how much of each seeded item a citizen need not type or upload.

In-process, on a throwaway SQLite database (built by the Alembic migrations), an embedded Redis
in a throwaway instance folder, and the data-sharing exchange and e-certificate library
simulators (integrations/govdata/*_sim.py) served from threads over the seeded population
(integrations/govdata/population.py: about 1,200 people). The seeded catalog (seed/catalog) is
imported and published; then, for every published item and for PEOPLE adults (age >= 18) drawn
uniformly from the population for that item (deterministic for --seed; not the people the item
is meant for, so the figure is what an arbitrary citizen gets), a citizen verified in person at a
hall as that person:

1. creates a draft through the API (POST /v1/applications): identity and phone fields prefilled;
2. authorises data sharing (POST /v1/applications/{id}/data-sharing) when the item has any:
   fields bound to shared data are filled, shared records and valid e-certificates stand in for
   materials; conditional data (department approval) comes back pending;
3. after every draft exists, every pending ticket is approved through the exchange simulator's
   control API and the sweeper's `poll_pending` applies the answers; each draft is read again;
4. each draft is completed as a phone must (required fields still empty answered, a file for each
   required material nothing satisfied), agreed to and submitted; the product's own counters
   (domain/applications/burden.py) then say how many answered fields were filled for the citizen.

Counted per draft, from the API's own answer: form leaves (FormSpec.leaves) with a provenance
entry whose source is not "user" (identity, account, exchange, earlier application) over all
leaves; REQUIRED materials with at least one reference (shared record or e-certificate) over all
required materials; conditional materials separately. "Capability" is what a citizen with every
record would get: leaves bound to any prefill source, and required materials that accept an
e-certificate type or a shared dataset at all. Writes docs/benchmarks-burden.md and prints a
summary; exit 0 when the fields answered at submission and the required materials after
approvals both reach the reform's 60 %, 1 when not, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import traceback
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


# --- environment --------------------------------------------------------------------------------


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


class Environment:
    """The app, its SQLite database and embedded Redis, and the two govdata simulators."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.instance = work / "instance"
        self.exchange: Any = None
        self.ecert: Any = None
        self.context: Any = None
        self._previous_clock: Any = None

    def start(self) -> None:
        from config import TestConfig
        from core import clock
        from integrations.govdata import ecert_sim, exchange_sim
        from integrations.simulator_server import ThreadedSimulator

        work = self.work
        url = f"sqlite:///{work / 'burden.db'}"
        migrate(url)
        base = {
            "ENV_NAME": "test",
            "INSTANCE_DIR": self.instance,
            "STORAGE_LOCAL_ROOT": str(work / "blobs"),
            "DATABASE_URL": url,
            "REDIS_URL": None,  # the embedded Redis, in the throwaway instance folder
            "LOG_LEVEL": "WARNING",
            "ACCESS_LOG": False,
        }
        sim_config = vars(TestConfig()) | base
        # Conditional records wait for the control API (no approval timer).
        self.exchange = ThreadedSimulator(
            exchange_sim.create_simulator(sim_config | {"EXCHANGE_SIM_APPROVAL_SECONDS": 0})
        ).start()
        self.ecert = ThreadedSimulator(ecert_sim.create_simulator(sim_config)).start()
        # The clock moves only when told: the sweeper's poll interval is skipped, not waited out.
        self.clock = clock.FrozenClock()
        self._previous_clock = clock.use(self.clock)
        from factory import create_app

        self.app = create_app(
            base | {"EXCHANGE_BASE_URL": self.exchange.url, "ECERT_BASE_URL": self.ecert.url}
        )
        self.context = self.app.app_context()
        self.context.push()
        self.client = self.app.test_client()

    def close(self) -> None:
        from core import clock
        from core.db import db
        from core.redis import stop_embedded

        try:
            if self.context is not None:
                db.session.remove()
                if db.engine is not None:
                    db.engine.dispose()
                self.context.pop()
        finally:
            if self._previous_clock is not None:
                clock.use(self._previous_clock)
            for sim in (self.exchange, self.ecert):
                if sim is not None:
                    sim.stop()
            stop_embedded(self.instance, save=False)  # nothing to do when it never started


def import_catalog() -> list[tuple[str, str]]:
    """Import and publish the seeded catalog; (code, name) of every published item, in seed order."""
    from sqlalchemy import select

    from cli.catalog import SEED_DIR, SEED_FILES, merged_documents
    from core.db import db
    from domain.catalog import service as catalog
    from domain.catalog.models import STATUS_PUBLISHED, ServiceItem
    from domain.operators.audit_log import CLI_ACTOR

    document = merged_documents([SEED_DIR / name for name in SEED_FILES])
    document["publish"] = True
    session = db.session()
    report = catalog.import_catalog(session, CLI_ACTOR, document, dry_run=False)
    if not report.ok:
        raise BenchError(f"seeded catalog did not import: {report.problems}")
    published = dict(
        session.execute(
            select(ServiceItem.code, ServiceItem.name).where(ServiceItem.status == STATUS_PUBLISHED)
        ).all()
    )
    return [(it["code"], published[it["code"]]) for it in document["items"] if it["code"] in published]


class Citizens:
    """One account per person of the population, verified in person at a hall (L3), made once."""

    def __init__(self, app: Any) -> None:
        from integrations.govdata.population import Population

        self.app = app
        self.population = Population(
            int(app.config["GOVDATA_SIM_POPULATION"]), int(app.config["GOVDATA_SIM_SEED"])
        )
        self.adults = [p for p in self.population.people.values() if p.adult]
        self.index = {number: i for i, number in enumerate(self.population.people)}
        self.headers: dict[str, dict[str, str]] = {}

    def sample(self, code: str, n: int, seed: int) -> list[Any]:
        """`n` adults drawn uniformly for item `code` (the same for the same seed, any item order)."""
        return random.Random(f"{seed}:{code}").sample(self.adults, min(n, len(self.adults)))

    def of(self, person: Any) -> dict[str, str]:
        if person.id_number not in self.headers:
            from core.db import db
            from domain.accounts import service as accounts
            from domain.auth import sessions
            from domain.identity import hall

            svc = self.app.extensions["yiwang"]
            session = db.session()
            account, _ = accounts.login_phone(
                session, encryptor=svc.encryptor, hasher=svc.hasher,
                phone=f"139{self.index[person.id_number]:08d}",
            )  # fmt: skip
            pair = sessions.start_session(
                session, tokens=svc.tokens, policy=svc.citizen_policy, account=account,
                channel="app", device_label="bench",
            )  # fmt: skip
            hall.record_in_person(
                db.session(), deps=svc.identity, operator_id="op-bench", account_id=pair.account_id,
                name=person.name, id_number=person.id_number, hall=HALL, request_id=None,
            )  # fmt: skip
            self.headers[person.id_number] = {"Authorization": f"Bearer {pair.access_token}"}
        return self.headers[person.id_number]


# --- the measurement ----------------------------------------------------------------------------


def capability(item: Item, body: dict[str, Any]) -> list[str]:
    """Fill the item's capability figures from its pinned spec; its leaves."""
    from core.db import db
    from domain.applications import forms

    spec = forms.spec_for(db.session(), [(i["code"], int(i["version"])) for i in body["items"]])
    leaves = list(spec.leaves)
    item.leaves = len(leaves)
    item.bound = sum(1 for leaf in leaves if leaf in spec.prefill)
    item.shared_bound = sum(1 for leaf in leaves if spec.prefill.get(leaf, "").startswith("shared."))
    required = [m for m in spec.materials.values() if m["requirement"] == "required"]
    item.required = len(required)
    item.accepting = sum(1 for m in required if m["ecert_types"] or m["shared_data"])
    return leaves


def expect(resp: Any, status: int, what: str) -> dict[str, Any]:
    if resp.status_code != status:
        raise BenchError(f"{what}: HTTP {resp.status_code} {resp.get_data(as_text=True)[:500]}")
    return resp.get_json()


def draft(env: Environment, item: Item, leaves: list[str] | None, headers: dict[str, str]) -> list[str]:
    """One citizen's draft of `item`, sharing authorised; counted as it stands right after."""
    body = expect(
        env.client.post(URL, json={"service_code": item.code}, headers=headers), 201, f"create {item.code}"
    )
    if leaves is None:
        leaves = capability(item, body)
    if body.get("data_sharing") is not None:
        body = expect(
            env.client.post(
                f"{URL}/{body['id']}/data-sharing",
                json={"accepted": True, "text_version": body["data_sharing"]["text_version"]},
                headers=headers,
            ),
            200,
            f"data sharing {item.code}",
        )
    item.tallies["now"].add(count(body, leaves))
    item.answers["now"].update(answers(body))
    item.drafts.append((body["id"], headers))
    return leaves


def approve_all(env: Environment) -> dict[str, int]:
    """Approve every pending ticket at the exchange, then let the sweeper's poll apply them."""
    import httpx
    from sqlalchemy import func, select

    from core.db import db
    from domain.shared_data import models as m
    from domain.shared_data import service as sharing

    session = db.session()
    tickets = list(session.scalars(select(m.SharedRecord.ticket).where(m.SharedRecord.status == m.PENDING)))
    with httpx.Client(timeout=10) as http:
        for ticket in tickets:
            resp = http.post(f"{env.exchange.url}_sim/tickets/{ticket}", json={"decision": "approve"})
            resp.raise_for_status()
    deps = env.app.extensions["yiwang"].govdata
    env.clock.advance(deps.poll_seconds + 1)
    resolved = 0
    while True:
        done = sharing.poll_pending(session, deps)
        resolved += done
        if not done:
            break
    left = session.scalar(
        select(func.count()).select_from(m.SharedRecord).where(m.SharedRecord.status == m.PENDING)
    )
    return {"tickets": len(tickets), "resolved": resolved, "still_pending": int(left or 0)}


def reread(env: Environment, item: Item, leaves: list[str]) -> None:
    for app_id, headers in item.drafts:
        body = expect(env.client.get(f"{URL}/{app_id}", headers=headers), 200, f"read {item.code}")
        item.tallies["after"].add(count(body, leaves))
        item.answers["after"].update(answers(body))
        for m in body["materials"]:
            accepts = bool(m["accepts"]["ecert_types"] or m["accepts"]["shared_data"])
            row = item.materials.setdefault(m["id"], [m["name"], m["requirement"], accepts, 0])
            row[3] += bool(m["satisfied_by"])


def _leaf_schema(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: Any = schema
    for part in path.split("."):
        props = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(props, dict) or part not in props:
            return None
        node = props[part]
    return node


def _classify(item: Item, schema: dict[str, Any], body: dict[str, Any]) -> None:
    """How the citizen answered what was not filled for them: a tap (option, yes/no, date) or text."""

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else key)
            return
        prov = body["provenance"].get(prefix) or {}
        if node is None or prov.get("source", "user") != "user":
            return
        leaf = _leaf_schema(schema, prefix) or {}
        tap = "enum" in leaf or "const" in leaf or leaf.get("type") == "boolean"
        tap = tap or leaf.get("format") == "date"
        item.answered_by_citizen["choice" if tap else "text"] += 1

    walk(body["data"], "")


def _complete(env: Environment, item: Item, app_id: str, headers: dict[str, str]) -> bool:
    """Answer what the citizen still must (required fields; a file per unsatisfied required
    material), agree and submit, as a phone would; True when the submission was accepted."""
    import uuid

    from tests.api.v1.applications.conftest import fill_value, missing_data, pdf

    body = expect(env.client.get(f"{URL}/{app_id}", headers=headers), 200, f"read {item.code}")
    schema = expect(env.client.get(f"{URL}/{app_id}/form", headers=headers), 200, "form")["schema"]
    typed = missing_data(schema, body["data"])
    for _ in range(4):
        if typed:
            resp = env.client.patch(
                f"{URL}/{app_id}", json={"data": typed},
                headers=headers | {"If-Match": f'"r{body["revision"]}"'},
            )  # fmt: skip
            body = expect(resp, 200, f"autosave {item.code}")
        for m in body["materials"]:
            if m["requirement"] == "required" and not m["satisfied"]:
                resp = env.client.post(
                    f"{URL}/{app_id}/materials/{m['id']}/files", data=pdf(),
                    headers=headers | {"Content-Type": "application/pdf"},
                )  # fmt: skip
                expect(resp, 201, f"upload {item.code}/{m['id']}")
        body = expect(env.client.get(f"{URL}/{app_id}", headers=headers), 200, f"read {item.code}")
        resp = env.client.post(
            f"{URL}/{app_id}/submit",
            json={"consent": {"accepted": True, "text_version": body["consent"]["text_version"]}},
            headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
        )
        if resp.status_code == 200:
            _classify(item, schema, resp.get_json())
            return True
        problems = (resp.get_json() or {}).get("error", {}).get("fields") or {}
        # Fields a situational rule asks for (if post, an address): the citizen answers those too.
        typed = {}
        for path in problems:
            leaf = _leaf_schema(schema, path[5:]) if path.startswith("data.") else None
            if leaf is not None:
                node = typed
                parts = path[5:].split(".")
                for part in parts[:-1]:
                    node = node.setdefault(part, {})
                node[parts[-1]] = fill_value(leaf, schema)
        if not typed:
            return False
    return False


def submit_all(env: Environment, items: list[Item]) -> None:
    """Submit every draft; then read the product's own per-item burden counters."""
    from core.db import db
    from domain.applications import burden

    for item in items:
        for app_id, headers in item.drafts:
            if not _complete(env, item, app_id, headers):
                item.submit_failures += 1
    rows = {r["service_code"]: r for r in burden.per_item(db.session())}
    for item in items:
        row = rows.get(item.code) or {}
        item.submitted = {
            k: int(row.get(k) or 0)
            for k in ("applications", "fields_prefilled", "fields_typed", "materials_without_upload",
                      "materials_uploaded")
        }  # fmt: skip


def run(people: int, seed: int, only: list[str] | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-burden-"))
    timings: dict[str, float] = {}
    began = time.monotonic()
    env = Environment(work)
    try:
        env.start()
        timings["setup"] = time.monotonic() - began
        mark = time.monotonic()
        catalog = import_catalog()
        if only:
            catalog = [(c, n) for c, n in catalog if c in only]
        citizens = Citizens(env.app)
        timings["catalog"] = time.monotonic() - mark
        mark = time.monotonic()
        items: list[Item] = []
        leaves_of: dict[str, list[str]] = {}
        for code, name in catalog:
            item = Item(code, name)
            items.append(item)
            leaves = None
            for person in citizens.sample(code, people, seed):
                leaves = draft(env, item, leaves, citizens.of(person))
            leaves_of[code] = leaves or []
        timings["drafts"] = time.monotonic() - mark
        mark = time.monotonic()
        approvals = approve_all(env)
        for item in items:
            reread(env, item, leaves_of[item.code])
        timings["approvals"] = time.monotonic() - mark
        mark = time.monotonic()
        submit_all(env, items)
        timings["submit"] = time.monotonic() - mark
        exchange = env.exchange.app.extensions["exchange"]
        sim_counts = dict(exchange.counts)
        accounts = len(citizens.headers)
    finally:
        env.close()
        shutil.rmtree(work, ignore_errors=True)
    timings["total"] = time.monotonic() - began
    return {
        "people": people,
        "seed": seed,
        "items": items,
        "approvals": approvals,
        "timings": timings,
        "accounts": accounts,
        "exchange": sim_counts,
        "adults": len(citizens.adults),
        "population": len(citizens.population.people),
    }


# --- the report ---------------------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def frac(part: int, whole: int) -> str:
    return f"{part}/{whole} = {pct(part / whole if whole else None)}"


def mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def totals(items: list[Item]) -> dict[str, Tally]:
    out = {p: Tally() for p in PHASES}
    for item in items:
        for p in PHASES:
            out[p].add(item.tallies[p])
    return out


def summary(result: dict[str, Any]) -> dict[str, Any]:
    items: list[Item] = result["items"]
    tot = totals(items)
    leaves = sum(i.leaves for i in items)
    bound = sum(i.bound for i in items)
    required = sum(i.required for i in items)
    accepting = sum(i.accepting for i in items)
    out: dict[str, Any] = {
        "fields": {p: tot[p].fields_share for p in PHASES},
        "fields_mean": {p: mean([i.tallies[p].fields_share for i in items]) for p in PHASES},
        "required": {p: tot[p].required_share for p in PHASES},
        "required_mean": {p: mean([i.tallies[p].required_share for i in items]) for p in PHASES},
        "fields_capability": bound / leaves if leaves else None,
        "fields_capability_mean": mean([i.bound / i.leaves if i.leaves else None for i in items]),
        "required_capability": accepting / required if required else None,
        "required_capability_mean": mean([i.accepting / i.required if i.required else None for i in items]),
    }
    pre = sum(i.submitted.get("fields_prefilled", 0) for i in items)
    typed = sum(i.submitted.get("fields_typed", 0) for i in items)
    out["submitted"] = {
        "prefilled": pre,
        "typed": typed,
        "share": pre / (pre + typed) if pre + typed else None,
    }
    out["submitted_mean"] = mean([submitted_share(i) for i in items])
    out["submit_failures"] = sum(i.submit_failures for i in items)
    answered: Counter[str] = Counter()
    for i in items:
        answered.update(i.answered_by_citizen)
    out["answered"] = answered
    out["pass_fields_leaves"] = (out["fields"]["after"] or 0) >= TARGET
    out["pass_fields"] = (out["submitted"]["share"] or 0) >= TARGET
    out["pass_required"] = (out["required"]["after"] or 0) >= TARGET
    return out


def _untyped(s: dict[str, Any]) -> float | None:
    total = s["submitted"]["prefilled"] + s["submitted"]["typed"]
    return (total - s["answered"]["text"]) / total if total else None


def submitted_share(item: Item) -> float | None:
    pre, typed = item.submitted.get("fields_prefilled", 0), item.submitted.get("fields_typed", 0)
    return pre / (pre + typed) if pre + typed else None


def render(facts: dict[str, str], result: dict[str, Any], s: dict[str, Any]) -> str:
    items: list[Item] = result["items"]
    tot = totals(items)
    now, after = tot["now"], tot["after"]
    leaves = sum(i.leaves for i in items)
    bound = sum(i.bound for i in items)
    required = sum(i.required for i in items)
    accepting = sum(i.accepting for i in items)
    t = result["timings"]
    ap = result["approvals"]
    verdict = {True: "**PASS**", False: "**FAIL**"}
    lines = [
        "# Burden benchmark: what a citizen need not type or upload",
        "",
        f"Run {facts['when']} on {facts['machine']}, Python {facts['python']}: "
        f"`{facts['command']}` (`make bench-burden`). Wall time {t['total']:.0f} s "
        f"(setup {t['setup']:.0f} s, catalog {t['catalog']:.0f} s, drafts {t['drafts']:.0f} s, "
        f"approvals and re-reads {t['approvals']:.0f} s, submissions {t['submit']:.0f} s).",
        "",
        f"- {len(items)} published items of the seeded catalog × {result['people']} adults each "
        f"(seed {result['seed']}) = {now.drafts} drafts by {result['accounts']} distinct citizens, "
        f"drawn from the {result['adults']} adults of the {result['population']}-person seeded population",
        f"- exchange: {result['exchange'].get('queries', 0)} queries "
        f"({result['exchange'].get('found', 0)} found, {result['exchange'].get('no_record', 0)} no record, "
        f"{result['exchange'].get('pending', 0)} pending); {ap['tickets']} pending tickets approved, "
        f"{ap['resolved']} resolved by `poll_pending`, {ap['still_pending']} still pending",
        "",
        "## Method",
        "",
        "Everything runs in one process: the app on a throwaway SQLite database built by the Alembic "
        "migrations and an embedded Redis, the data-sharing exchange and e-certificate library "
        "simulators served from threads (conditional data waits for the control API). The seeded "
        "catalog is imported and published. For each published item, adults (age ≥ 18) are drawn "
        "uniformly from the seeded population — not the people the item is meant for, so an item for "
        "parents of newborns is measured mostly on people without a newborn; the figures are what an "
        "arbitrary citizen gets, not what the item's typical applicant gets. Each person has one "
        "account, verified in person at a hall (L3). Through the API, the citizen creates a draft "
        "and, when the item uses any shared data or certificate, authorises data sharing; the draft "
        "is counted as the API returns it (**immediately**). Then every pending conditional ticket is "
        "approved at the exchange, the sweeper's `poll_pending` applies the answers and every draft "
        "is read again (**after approvals**). *Fields*: of the form's leaves (every leaf of the "
        "schema, optional and situational ones included), those with a provenance entry whose source "
        "is not the citizen (identity, account phone, exchange; earlier applications cannot count: "
        "nobody here has submitted one). *Required materials*: of the materials the item requires, "
        "those with at least one reference (a shared record or a valid e-certificate) the product "
        "attached; nothing is uploaded in this run. The count trusts the product's matching: it does not "
        "judge whether the attached record or certificate proves what the material asks (any found "
        "record of a listed dataset, any valid certificate of a listed type counts). Conditional "
        "materials are reported separately, optional ones not at all. *Capability* is what a citizen "
        "with every record would get (over the items' forms, one each): leaves bound to any prefill "
        "source, and required materials that accept an e-certificate type or a shared dataset — "
        "whether the simulated population can hold them or not. *Pooled* sums over all drafts (so "
        "items with larger forms weigh more); *mean of items* is the unweighted mean of the per-item "
        "shares.",
        "",
        "## Overall",
        "",
        "| | immediately | after approvals | capability |",
        "|---|---|---|---|",
        f"| form fields without typing, pooled | {frac(now.filled, now.leaves)} | "
        f"{frac(after.filled, after.leaves)} | {frac(bound, leaves)} |",
        f"| form fields, mean of items | {pct(s['fields_mean']['now'])} | {pct(s['fields_mean']['after'])} "
        f"| {pct(s['fields_capability_mean'])} |",
        f"| required materials without upload, pooled | {frac(now.required_met, now.required)} | "
        f"{frac(after.required_met, after.required)} | {frac(accepting, required)} |",
        f"| required materials, mean of items | {pct(s['required_mean']['now'])} | "
        f"{pct(s['required_mean']['after'])} | {pct(s['required_capability_mean'])} |",
        f"| conditional materials without upload, pooled | {frac(now.conditional_met, now.conditional)} | "
        f"{frac(after.conditional_met, after.conditional)} | |",
        "",
        "**At submission** (the product's own counters, `domain/applications/burden.py`, as operators "
        "read them at `GET /admin/v1/applications/burden`): every draft is completed the way a phone "
        "must — the required fields still empty are answered (and the ones a situational rule then "
        "asks for), a file is uploaded for each required material nothing else satisfied — agreed to "
        "and submitted. Of the fields that carry an answer at submission, "
        f"{frac(s['submitted']['prefilled'], s['submitted']['prefilled'] + s['submitted']['typed'])} "
        f"were filled for the citizen (mean of items {pct(s['submitted_mean'])}); "
        f"{s['submit_failures']} drafts could not be submitted. Optional fields a citizen might add "
        "are not typed here, so a real citizen's share can be lower. Of the answers the citizens gave "
        f"themselves, {s['answered']['choice']} were choices (an option, yes/no, a date picked on the "
        f"phone) and {s['answered']['text']} free text; counting only free text as typing, "
        f"{pct(_untyped(s))} of the answered fields needed no typing (shown for the reader; the verdict "
        "below counts every answer the citizen gave as typed).",
        "",
        "Fields filled without typing, by source (after approvals, pooled): "
        + ", ".join(f"{k} {after.by_source.get(k, 0)}" for k in SOURCES)
        + f" of {after.leaves} leaves. Material references (after approvals): "
        + ", ".join(f"{k} {v}" for k, v in sorted(after.refs.items()))
        + ".",
        "",
        f"Reform target ≥ {TARGET:.0%}: form fields answered at submission "
        f"{pct(s['submitted']['share'])} {verdict[s['pass_fields']]} (of every leaf of the forms, "
        f"after approvals: {pct(s['fields']['after'])} {verdict[s['pass_fields_leaves']]}); "
        f"required materials (after approvals, pooled) "
        f"{pct(s['required']['after'])} {verdict[s['pass_required']]}. "
        f"(Mean of items: fields {pct(s['fields_mean']['after'])}, required materials "
        f"{pct(s['required_mean']['after'])}; capability: fields {pct(s['fields_capability'])}, "
        f"required materials {pct(s['required_capability'])}.)",
        "",
        "## Per item",
        "",
        f"Shares over the {result['people']} drafts of each item. Exchange answers: found / no record / "
        "pending of the datasets the drafts asked for, after approvals (— : the item uses no shared data).",
        "",
        "| code | item | leaves | fields now | fields after | fields capability | fields at submission | "
        "required | required now | required after | required capability | conditional after | "
        "exchange answers |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i in items:
        n, a = i.tallies["now"], i.tallies["after"]
        lines.append(
            f"| `{i.code}` | {i.name} | {i.leaves} | {pct(n.fields_share)} | {pct(a.fields_share)} | "
            f"{i.bound}/{i.leaves} = {pct(i.bound / i.leaves if i.leaves else None)} | "
            f"{pct(submitted_share(i))} | {i.required} | "
            f"{pct(n.required_share)} | {pct(a.required_share)} | "
            f"{i.accepting}/{i.required} = {pct(i.accepting / i.required if i.required else None)} | "
            f"{pct(a.conditional_share)} | {answer_cell(i.answers['after'])} |"
        )
    lines += ["", "## Observations", "", *observations(items), ""]
    return "\n".join(lines)


def observations(items: list[Item]) -> list[str]:
    """What the tables imply but do not say: where nothing comes from shared data, and why."""
    out = []
    no_exchange = [i for i in items if not i.tallies["after"].by_source.get("exchange")]
    if no_exchange:
        out.append(
            "- No form field filled from shared data in any draft (after approvals): "
            + "; ".join(
                f"{i.name} ({f'{i.shared_bound} bound, no record' if i.shared_bound else 'none bound'})"
                for i in no_exchange
            )
        )
    never = [
        (i, name)
        for i in items
        for name, requirement, accepts, met in i.materials.values()
        if requirement == "required" and accepts and not met
    ]
    if never:
        out.append(
            "- Required materials that accept an e-certificate or shared data, satisfied in no draft: "
            + "; ".join(f"{i.name}: {name}" for i, name in never)
        )
    cannot = [
        (i, name)
        for i in items
        for name, requirement, accepts, _ in i.materials.values()
        if requirement == "required" and not accepts
    ]
    if cannot:
        out.append(
            "- Required materials nothing can stand in for (the citizen always uploads or brings them): "
            + "; ".join(f"{i.name}: {name}" for i, name in cannot)
        )
    return out or ["- nothing notable"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="share of fields and materials spared, per item")
    parser.add_argument("--people", type=int, default=30, help="adults sampled per item")
    parser.add_argument("--seed", type=int, default=20261204, help="seed of the sample")
    parser.add_argument("--item", action="append", help="measure only this item code (repeatable)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the simulators' request lines
    try:
        result = run(args.people, args.seed, args.item)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    except Exception:  # the run itself broke: say so, and do not report a result
        traceback.print_exc()
        print("benchmark failed", file=sys.stderr)
        return 2
    s = summary(result)
    command = "python -m bench.burden" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    facts = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "command": command,
    }
    tot = totals(result["items"])
    print(
        f"{len(result['items'])} items × {args.people} adults = {tot['now'].drafts} drafts in "
        f"{result['timings']['total']:.0f} s"
    )
    for label, key in (("fields", "fields"), ("required materials", "required")):
        print(
            f"{label}: immediately {pct(s[key]['now'])}, after approvals {pct(s[key]['after'])} "
            f"(mean of items {pct(s[key + '_mean']['after'])}), capability {pct(s[key + '_capability'])}"
        )
    print(
        f"fields answered at submission: {pct(s['submitted']['share'])} filled for the citizen "
        f"(mean of items {pct(s['submitted_mean'])}; {s['submit_failures']} drafts not submitted)"
    )
    print(
        f"target ≥ {TARGET:.0%}: fields at submission {'PASS' if s['pass_fields'] else 'FAIL'}, "
        f"required materials {'PASS' if s['pass_required'] else 'FAIL'}"
    )
    Path(args.out).write_text(render(facts, result, s), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if s["pass_fields"] and s["pass_required"] else 1


if __name__ == "__main__":
    sys.exit(main())
