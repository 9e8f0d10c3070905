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
import sys
import time
import traceback
from pathlib import Path

from bench.burden_flow import run
from bench.burden_model import RESULTS, BenchError
from bench.burden_report import TARGET, pct, render, summary, totals


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
