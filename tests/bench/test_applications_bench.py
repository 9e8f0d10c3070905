"""The application scenarios of the benchmark: acceptance, report, the fill's histories and the
Lua scripts (run by the real wrk against a recording server)."""

from __future__ import annotations

import json
import shutil

import pytest

from bench.applications_load import (
    BIG_ROWS,
    MAX_P99_GROWTH,
    acceptance_lines,
    applications_acceptance,
    setup_lines,
)
from bench.load import run_wrk, split_tokens
from bench.report import render
from tests.bench.test_harness import _report_data, _result, recorder, wrk_missing  # noqa: F401

FILL = {
    "rows": 1_000_000, "tables": {"accounts": 26000, "application_events": 5_000_000,
    "application_materials": 1_700_000, "forwarding_outbox": 900_000, "consent_records": 880_000},
    "database_size": "4.8 GB", "wall_seconds": 150.0, "workers": 2, "fill_seconds": 120.0,
    "indexes_rebuilt": ["a", "b"], "index_seconds": 12.0, "vacuum_seconds": 5.0,
}  # fmt: skip


def _results(**over: dict) -> dict:
    results = {
        "bare": _result(1000, 40),
        "application_get": _result(300, 60, statuses={"200": 4500}),
        "application_submit": _result(120, 149.9, statuses={"200": 1800}, tokens_used=1800),
        "application_get_1m": _result(290, 90, statuses={"200": 4400}),
        "application_submit_1m": _result(110, 224.8, statuses={"200": 1700}, tokens_used=1700),
    }
    for key, extra in over.items():
        results[key] = results[key] | extra
    return results


def test_applications_acceptance_passes_only_when_every_condition_holds():
    ok = applications_acceptance(_results(), {"fill": FILL})
    assert ok["passed"] is True, ok["checks"]
    assert ok["checks"]["get_p99_growth"]["value"] == 1.5

    slow = applications_acceptance(_results(application_submit={"rps": 119}), {"fill": FILL})
    assert slow["passed"] is False and slow["checks"]["submit_ratio"]["ok"] is False

    tail = applications_acceptance(_results(application_submit={"p99_ms": 150.0}), {"fill": FILL})
    assert tail["passed"] is False and tail["checks"]["submit_p99_ms"]["ok"] is False

    get = applications_acceptance(_results(application_get={"rps": 299}), {"fill": FILL})
    assert get["passed"] is False and get["checks"]["get_ratio"]["ok"] is False

    grown = applications_acceptance(_results(application_get_1m={"p99_ms": 90.1}), {"fill": FILL})
    assert grown["passed"] is False and grown["checks"]["get_p99_growth"]["ok"] is False

    small = applications_acceptance(_results(), {"fill": FILL | {"rows": 999_999}})
    assert small["passed"] is False and small["checks"]["rows"]["ok"] is False

    # Drafts run out: the 404s of the exhausted list are errors, even when wrk saw few of them.
    out = applications_acceptance(_results(application_submit={"tokens_exhausted": 3}), {"fill": FILL})
    assert out["passed"] is False and out["checks"]["errors"]["by_scenario"]["application_submit"] == 3

    wrong = applications_acceptance(
        _results(application_get={"statuses": {"200": 10, "404": 2}}), {"fill": FILL}
    )
    assert wrong["passed"] is False and wrong["checks"]["errors"]["value"] == 2

    busy = applications_acceptance(_results(bare={"cpu_other_pct": 30.0}), {"fill": FILL})
    assert busy["passed"] is False and busy["checks"]["other_cpu_pct"]["ok"] is False


def test_without_the_big_table_the_block_fails_and_says_so():
    results = _results()
    del results["application_get_1m"], results["application_submit_1m"]
    acc = applications_acceptance(results, {})
    assert acc["passed"] is False
    assert acc["checks"]["get_p99_growth"] == {
        "value": None,
        "limit": MAX_P99_GROWTH,
        "ok": False,
        "p99_ms": None,
    }
    data = _report_data(results, applications_acceptance=acc)
    text = "\n".join(acceptance_lines(data, {True: "pass", False: "**fail**"}))
    assert f"GET p99 at {BIG_ROWS:,} applications: not measured" in text


def test_report_renders_the_applications_block_and_setup():
    results = _results()
    info = {"citizens": 16, "get_apps": 40, "service_code": "X", "drafts_made": 9000, "fill": FILL}
    data = _report_data(
        results, applications=info, applications_acceptance=applications_acceptance(results, info)
    )
    text = render(data)
    block = text.split("## Acceptance: applications\n", 1)[1].split("\n## ", 1)[0]
    assert "**PASS**" in block
    assert "submit rps ratio 0.120× (≥ 0.12): pass" in block
    assert "submit p99 149.90 ms (< 150 ms): pass" in block
    assert "GET p99 at 1,000,000 applications 90.00 ms, 1.50× the 60.00 ms of the fresh table" in block
    assert "5,000,000 timeline" in text and "9,000 made in the run" in text
    assert setup_lines(info)[0] in text
    raw = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(raw) == data


def test_a_run_with_a_smaller_big_table_is_partial():
    from bench.run import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--applications-rows", "10000"])
    args = parse_args(["--only", "application_get", "application_submit", "--applications-rows", "0",
                       "--out", "/tmp/x.md"])  # fmt: skip
    assert args.only == ["bare", "application_get", "application_submit"] and args.applications_rows == 0


def test_generated_histories_follow_the_state_machine():
    from bench.applications_data import PATHS, STATUS_MIX, _mix_rows
    from domain.applications import states

    assert {s for s, _ in STATUS_MIX} == set(PATHS) <= set(states.STATUSES)
    for status, path in PATHS.items():
        assert path[0] == states.DRAFT and path[-1] == status
        for before, after in zip(path, path[1:], strict=False):
            assert (before, after) in states.TRANSITIONS, (status, before, after)
    mix, paths = _mix_rows()
    assert mix[0][1] == 0.0 and mix[-1][2] > 1.0
    assert all(a[2] == pytest.approx(b[1]) for a, b in zip(mix, mix[1:], strict=False))  # no gaps
    assert len(paths) == sum(len(p) for p in PATHS.values())


@wrk_missing
def test_submit_script_sends_every_draft_once_with_its_own_key(recorder, tmp_path):  # noqa: F811
    app, url = recorder
    lines = [f"app-{i:04d} share-abc{i % 3} tok{i % 4}" for i in range(200)]  # fewer than a second takes
    split_tokens(lines, tmp_path / "drafts", 2)
    result = run_wrk(shutil.which("wrk"), url + "/v1/applications", "submit.lua", [str(tmp_path / "drafts")],
                     duration=1, connections=4, threads=2)  # fmt: skip
    sent = [r for r in app.requests if not r["path"].split("/")[3].startswith("exhausted-")]
    ids = [r["path"].split("/")[3] for r in sent]
    assert all(r["method"] == "POST" and r["path"].endswith("/submit") for r in app.requests)
    assert len(ids) == len(set(ids)) >= len(lines) - 1  # none twice; wrk's check request is not sent
    by_id = {line.split()[0]: line.split() for line in lines}
    for r in sent:
        app_id = r["path"].split("/")[3]
        assert r["auth"] == f"Bearer {by_id[app_id][2]}"
        assert json.loads(r["body"]) == {"consent": {"accepted": True, "text_version": by_id[app_id][1]}}
    assert result.tokens_used == len(lines) and result.tokens_exhausted > 0


@wrk_missing
def test_app_get_script_rotates_over_the_ids_with_the_token(recorder, tmp_path):  # noqa: F811
    app, url = recorder
    (tmp_path / "token").write_text("eyJ.app.token\n")
    ids = [f"id-{i}" for i in range(5)]
    (tmp_path / "ids").write_text("\n".join(ids) + "\n")
    result = run_wrk(shutil.which("wrk"), url + "/v1/applications", "app_get.lua",
                     [str(tmp_path / "token"), str(tmp_path / "ids")], duration=1, connections=2,
                     threads=2)  # fmt: skip
    assert result.requests > 10 and result.socket_errors == 0
    assert {r["auth"] for r in app.requests} == {"Bearer eyJ.app.token"}
    asked = [r["path"] for r in app.requests]
    assert set(asked) == {f"/v1/applications/{i}" for i in ids}
    counts = [asked.count(f"/v1/applications/{i}") for i in ids]
    assert max(counts) - min(counts) <= 4
