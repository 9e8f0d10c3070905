"""The burden benchmark's report: shares, verdicts, docs/benchmarks-burden.md."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.burden_model import PHASES, SOURCES, TARGET, Item, Tally, answer_cell


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
