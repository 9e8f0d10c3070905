"""The burden benchmark's steps: drafts, data sharing, approvals, submissions."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.burden_env import Citizens, Environment, import_catalog
from bench.burden_model import URL, BenchError, Item, answers, count


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
