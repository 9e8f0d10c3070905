"""The benchmark harness: acceptance verdict, report, token split and the wrk Lua scripts."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import stat
import threading
import urllib.parse
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from bench.infra import Gunicorn
from bench.load import run_wrk, split_tokens
from bench.report import acceptance, catalog_acceptance, render


def _result(rps: float, p99: float, **extra: object) -> dict:
    return {
        "label": "x", "request": "GET /x", "rps": rps, "p50_ms": p99 / 3, "p90_ms": p99 / 2, "p99_ms": p99,
        "max_ms": p99 * 2, "requests": int(rps * 15), "non_2xx": 0, "socket_errors": 0,
        "tokens_used": 0, "tokens_exhausted": 0, "per_worker": [10, 9], "cpu_busy_pct": 99.0,
        "cpu_other_pct": 1.0,
    } | extra  # fmt: skip


def _rss(peak: float) -> dict:
    return {"workers": 2, "after_max_mb": peak, "after_mean_mb": peak, "after_each_mb": [peak, peak],
            "peak_mb": peak, "master_mb": 20.0}  # fmt: skip


def test_acceptance_passes_only_when_every_condition_holds():
    results = {"bare": _result(1000, 5), "me": _result(350, 49.9)}
    assert acceptance(results, _rss(149.9))["passed"] is True

    slow = acceptance({"bare": _result(1000, 5), "me": _result(349, 10)}, _rss(100))
    assert slow["passed"] is False and slow["checks"]["ratio"]["ok"] is False

    tail = acceptance({"bare": _result(1000, 5), "me": _result(900, 50.0)}, _rss(100))
    assert tail["passed"] is False and tail["checks"]["p99_ms"]["ok"] is False

    fat = acceptance(results, _rss(150.0))
    assert fat["passed"] is False and fat["checks"]["rss_mb"]["ok"] is False

    errors = acceptance({"bare": _result(1000, 5), "me": _result(900, 10, non_2xx=3)}, _rss(100))
    assert errors["passed"] is False and errors["checks"]["errors"]["ok"] is False


def test_report_states_the_verdict_and_carries_the_raw_numbers():
    results = {"bare": _result(1000, 5), "me": _result(300, 80)}
    data = {
        "machine": {"date": "2026-01-01T00:00:00+00:00", "cpu": "cpu", "cores_usable": 2, "cores_logical": 2,
                    "ram_gb": 4, "os": "Linux", "python": "3.11", "gunicorn": "27", "wrk": "wrk 4",
                    "postgresql": "15", "redis": "7", "git": "abc"},
        "config": {"workers": 5, "worker_class": "gthread", "threads": 4, "keepalive": 5, "max_requests": 1,
                   "max_requests_jitter": 1, "preload_app": False, "accesslog": "-", "connections": 32,
                   "wrk_threads": 2, "duration": 15, "warmup": 3},
        "results": results, "rss": _rss(104), "acceptance": acceptance(results, _rss(104)),
        "server_errors": 0, "worker_restarts": 0, "loadavg_before": [0.5, 0.4, 0.3],
    }  # fmt: skip
    text = render(data)
    assert "**FAIL**" in text
    assert "rps ratio 0.300×" in text
    assert "| `GET /x` | 300 | 0.300 |" in text
    raw = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(raw) == data


def test_report_warns_when_one_worker_served_most_requests():
    results = {"bare": _result(1000, 5), "me": _result(300, 80, per_worker=[980, 15, 5, 0, 0])}
    data = {
        "machine": {"date": "d", "cpu": "c", "cores_usable": 2, "cores_logical": 2, "ram_gb": 4, "os": "o",
                    "python": "p", "gunicorn": "g", "wrk": "w", "postgresql": "15", "redis": "7", "git": "a"},
        "config": {"workers": 5, "worker_class": "gthread", "threads": 4, "keepalive": 5, "max_requests": 1,
                   "max_requests_jitter": 1, "preload_app": False, "accesslog": None, "connections": 32,
                   "wrk_threads": 2, "duration": 15, "warmup": 3},
        "results": results, "rss": _rss(104), "acceptance": acceptance(results, _rss(104)),
        "server_errors": 0, "worker_restarts": 0, "loadavg_before": [0.5, 0.4, 0.3],
    }  # fmt: skip
    text = render(data)
    assert "one worker served 98% of the requests" in text
    assert text.count("**Note:**") == 1  # the evenly split baseline gets none


def _catalog_results(**over: dict) -> dict:
    results = {
        "bare": _result(1000, 5),
        "service": _result(700, 20, statuses={"200": 10500}),
        "service304": _result(800, 20, statuses={"304": 12000}),
        "search": _result(500, 49.9, statuses={"200": 7500}),
    }
    for key, extra in over.items():
        results[key] = results[key] | extra
    return results


def test_catalog_acceptance_passes_only_when_every_condition_holds():
    ok = catalog_acceptance(_catalog_results(), 5000)
    assert ok["passed"] is True and ok["checks"]["errors"]["statuses_checked"] is True

    slow = catalog_acceptance(_catalog_results(service={"rps": 699}), 5000)
    assert slow["passed"] is False and slow["checks"]["service_ratio"]["ok"] is False

    slow304 = catalog_acceptance(_catalog_results(service304={"rps": 799}), 5000)
    assert slow304["passed"] is False and slow304["checks"]["service304_ratio"]["ok"] is False

    tail = catalog_acceptance(_catalog_results(search={"p99_ms": 50.0}), 5000)
    assert tail["passed"] is False and tail["checks"]["search_p99_ms"]["ok"] is False

    small = catalog_acceptance(_catalog_results(), 4999)
    assert small["passed"] is False and small["checks"]["items"]["ok"] is False

    errors = catalog_acceptance(_catalog_results(search={"non_2xx": 2, "socket_errors": 1}), 5000)
    assert errors["passed"] is False and errors["checks"]["errors"]["by_scenario"]["search"] == 3

    # A busy neighbour slows the baseline more than yiwang: the ratios then mean nothing.
    busy = catalog_acceptance(_catalog_results(bare={"cpu_other_pct": 47.1}), 5000)
    assert busy["passed"] is False and busy["checks"]["other_cpu_pct"]["ok"] is False


def test_a_304_scenario_answered_with_full_bodies_fails():
    # wrk counts only statuses >= 400: the access log's statuses are what catch a broken ETag.
    wrong = catalog_acceptance(_catalog_results(service304={"statuses": {"200": 40, "304": 11960}}), 5000)
    assert wrong["passed"] is False
    assert wrong["checks"]["errors"]["by_scenario"] == {"service": 0, "service304": 40, "search": 0}
    # Without an access log the statuses cannot be checked; the report says so.
    unlogged = catalog_acceptance(_catalog_results(service304={"statuses": {}}), 5000)
    assert unlogged["passed"] is True and unlogged["checks"]["errors"]["statuses_checked"] is False


def _report_data(results: dict, **blocks: dict) -> dict:
    return {
        "machine": {"date": "d", "cpu": "c", "cores_usable": 2, "cores_logical": 2, "ram_gb": 4, "os": "o",
                    "python": "p", "gunicorn": "g", "wrk": "w", "postgresql": "15", "redis": "7", "git": "a"},
        "config": {"workers": 3, "worker_class": "gthread", "threads": 4, "keepalive": 5, "max_requests": 1,
                   "max_requests_jitter": 1, "preload_app": False, "accesslog": "-", "connections": 32,
                   "wrk_threads": 2, "duration": 15, "warmup": 3},
        "results": results, "rss": _rss(104), "server_errors": 0, "worker_restarts": 0,
        "loadavg_before": [0.5, 0.4, 0.3],
    } | blocks  # fmt: skip


def test_report_renders_the_catalog_block_next_to_the_me_block():
    results = _catalog_results(service304={"rps": 650, "rss_peak_mb": 120.5}) | {"me": _result(400, 30)}
    catalog = {"items": 5000, "bundles": 4, "source": "seed/catalog", "seconds": 40.0,
               "detail_code": "11440100007502318X3000105004000", "etag": '"abc"',
               "queries": ["身份证", "医保"]}  # fmt: skip
    data = _report_data(
        results, acceptance=acceptance(results, _rss(104)),
        catalog_acceptance=catalog_acceptance(results, 5000), catalog=catalog,
    )  # fmt: skip
    text = render(data)
    me_section = text.split("## Acceptance\n", 1)[1].split("\n## ", 1)[0]
    catalog_section = text.split("## Acceptance: service catalog\n", 1)[1].split("\n## ", 1)[0]
    assert "**PASS**" in me_section
    assert "**FAIL**" in catalog_section
    assert "304 rps ratio 0.650× (≥ 0.8): **fail**" in catalog_section
    assert "detail rps ratio 0.700× (≥ 0.7): pass" in catalog_section
    assert "search p99 49.90 ms (< 50 ms): pass" in catalog_section
    assert "at most 1.0% (≤ 10%" in catalog_section
    assert "身份证、医保" in text and "service304 120.5" in text
    raw = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(raw) == data


def test_report_without_the_me_block_still_renders_the_catalog_block():
    results = _catalog_results()
    text = render(_report_data(results, catalog_acceptance=catalog_acceptance(results, 5000)))
    assert "## Acceptance: service catalog" in text and "\n## Acceptance\n" not in text
    assert "**PASS**" in text


def test_status_counts_reads_the_access_log_after_the_offset(tmp_path):
    log = tmp_path / "yiwang.out.log"
    log.write_text(json.dumps({"status": 200, "pid": 1}) + "\n")
    offset = log.stat().st_size
    lines = [{"status": 304, "pid": 1}, {"status": 304, "pid": 2}, {"status": 200, "pid": 2}, {"pid": 3}]
    with log.open("a") as f:
        f.write("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    server = SimpleNamespace(stdout_path=log)
    assert Gunicorn.status_counts(server, offset) == {"200": 1, "304": 2}  # type: ignore[arg-type]


def test_synthetic_catalog_items_are_valid_and_unique():
    from bench.seed import catalog_items
    from domain.catalog.item_document import References, normalize_item
    from domain.catalog.problems import Problems
    from tests.domain.catalog import factories

    ref = factories.reference()
    refs = References(*(frozenset(row["code"] for row in ref[name])
                        for name in ("departments", "categories", "ecert_types")))  # fmt: skip
    seed_items = [factories.item(), factories.marriage_item()]
    items = catalog_items(seed_items, 60)
    assert items[:2] == seed_items and len(items) == 60
    assert len({i["code"] for i in items}) == 60 and len({i["name"] for i in items}) == 60
    for i, item in enumerate(items):
        problems = Problems()
        assert normalize_item(problems, f"items[{i}]", item, refs) is not None, problems.found
    copy = items[2]
    assert len(copy["code"]) == 31 and copy["basic_code"] == "900000000001"
    assert copy["code"] == copy["implementing_body"]["uscc"] + str(copy["level"]) + copy["basic_code"]
    assert copy["name"].startswith(seed_items[0]["name"] + "（") and copy["region"] != seed_items[0]["region"]
    assert catalog_items(seed_items, 1) == seed_items[:1]


def test_a_partial_run_must_not_overwrite_the_published_report():
    from bench.run import parse_args

    assert parse_args([]).only is None
    with pytest.raises(SystemExit):
        parse_args(["--only", "me"])  # would drop the catalog block from docs/benchmarks.md
    with pytest.raises(SystemExit):
        parse_args(["--catalog-items", "100"])
    args = parse_args(["--only", "service", "--out", "/tmp/x.md"])
    assert args.only == ["bare", "service"]


def test_split_tokens_hands_each_token_to_exactly_one_thread(tmp_path):
    tokens = [f"rt_{i}" for i in range(11)]
    split_tokens(tokens, tmp_path / "refresh", 3)
    parts = [(tmp_path / f"refresh.{i}").read_text().split() for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(tokens)
    assert [len(p) for p in parts] == [4, 4, 3]
    assert stat.S_IMODE((tmp_path / "refresh.0").stat().st_mode) == 0o600


# --- The Lua scripts, run by the real wrk against a recording server --------------------------

wrk_missing = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


class Recorder:
    """A WSGI app that remembers what each request carried."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        with self.lock:
            self.requests.append({
                "method": environ["REQUEST_METHOD"], "auth": environ.get("HTTP_AUTHORIZATION"),
                "xff": environ.get("HTTP_X_FORWARDED_FOR"), "body": body, "path": environ["PATH_INFO"],
                "query": environ.get("QUERY_STRING", ""), "inm": environ.get("HTTP_IF_NONE_MATCH"),
            })  # fmt: skip
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    from werkzeug.serving import make_server

    app = Recorder()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@wrk_missing
def test_refresh_script_never_sends_a_token_twice(recorder, tmp_path):
    app, url = recorder
    tokens = [f"rt_token_{i:04d}" for i in range(200)]  # fewer than wrk sends in a second
    split_tokens(tokens, tmp_path / "tokens", 2)
    result = run_wrk(shutil.which("wrk"), url + "/v1/auth/refresh", "refresh.lua", [str(tmp_path / "tokens")],
                     duration=1, connections=4, threads=2)  # fmt: skip
    sent = [json.loads(r["body"])["refresh_token"] for r in app.requests]
    real = [t for t in sent if not t.startswith("rt_exhausted_")]
    assert all(r["method"] == "POST" for r in app.requests)
    assert len(real) == len(set(real))  # none twice
    assert set(real) <= set(tokens)
    # wrk calls request() once before the run to check the script: that one token is never sent.
    assert len(real) >= len(tokens) - 1
    assert result.tokens_used == len(tokens)
    assert result.tokens_exhausted >= len(sent) - len(tokens) > 0
    assert result.requests <= len(app.requests)
    # Each request claims its own client address, so the per-IP rate limit is not what is measured.
    addresses = [r["xff"] for r in app.requests]
    assert len(set(addresses)) == len(addresses)


@wrk_missing
def test_get_script_sends_the_bearer_token_from_its_file(recorder, tmp_path):
    app, url = recorder
    token_file = tmp_path / "me.token"
    token_file.write_text("eyJ.test.token\n")
    result = run_wrk(shutil.which("wrk"), url + "/v1/me", "get.lua", [str(token_file)],
                     duration=1, connections=2, threads=1)  # fmt: skip
    assert result.requests > 0 and result.non_2xx == 0 and result.socket_errors == 0
    assert {r["auth"] for r in app.requests} == {"Bearer eyJ.test.token"}
    assert result.p50_ms <= result.p99_ms <= result.max_ms


@wrk_missing
def test_conditional_script_sends_the_etag_it_was_given(recorder):
    app, url = recorder
    result = run_wrk(shutil.which("wrk"), url + "/v1/services/X", "conditional.lua", ['"abc123"'],
                     duration=1, connections=2, threads=1)  # fmt: skip
    assert result.requests > 0 and result.socket_errors == 0
    assert {r["inm"] for r in app.requests} == {'"abc123"'}
    assert {r["path"] for r in app.requests} == {"/v1/services/X"}


@wrk_missing
def test_search_script_asks_every_query_in_turn(recorder):
    from bench.catalog_load import SEARCH_QUERIES, search_paths

    app, url = recorder
    result = run_wrk(shutil.which("wrk"), url + "/v1/services", "search.lua", search_paths(),
                     duration=1, connections=2, threads=2)  # fmt: skip
    assert result.requests > len(SEARCH_QUERIES) and result.socket_errors == 0
    asked = [urllib.parse.parse_qs(r["query"])["q"][0] for r in app.requests]
    assert {r["path"] for r in app.requests} == {"/v1/services"}
    assert set(asked) == set(SEARCH_QUERIES)
    # Round robin: no query is asked much more often than another.
    counts = [asked.count(q) for q in SEARCH_QUERIES]
    assert max(counts) - min(counts) <= 4


# --- Real-name verification: acceptance, report, seeded people and the verification driver ----


def _verification(per_second: float, **extra: object) -> dict:
    return {
        "label": "start + complete, Tencent FaceID", "request": "POST …", "method": "tencent_faceid",
        "workers": 16, "accounts": 64, "seconds": 10.0, "verifications": int(per_second * 10),
        "per_second": per_second, "p50_ms": 80.0, "p90_ms": 120.0, "p99_ms": 180.0, "max_ms": 250.0,
        "start": {"p50_ms": 40.0, "p90_ms": 60.0, "p99_ms": 90.0, "max_ms": 120.0},
        "complete": {"p50_ms": 40.0, "p90_ms": 60.0, "p99_ms": 90.0, "max_ms": 130.0},
        "requests": int(per_second * 20), "outcomes": {"passed": int(per_second * 10)}, "errors": 0,
        "passed_after_deadline": 0, "client_cpu_seconds": 0.5, "wall_seconds": 10.1,
        "per_worker": [700, 650, 650], "statuses": {"200": 1000, "201": 1000}, "cpu_busy_pct": 99.0,
        "cpu_other_pct": 1.0, "process_cpu_pct": {"yiwang workers": 150.0, "simulator": 20.0},
        "cpu_ms_per_verification": {"yiwang workers": 15.0, "simulator": 2.0, "redis": None},
        "simulator": "faceid", "warmup": None, "rss_peak_mb": 110.0,
    } | extra  # fmt: skip


def _identity_results(**over: dict) -> tuple[dict, dict]:
    results = {"bare": _result(1000, 5), "identity": _result(300, 30, statuses={"200": 4500})}
    verifications = {"verifications": _verification(100.0)}
    for key, extra in over.items():
        target = verifications if key.startswith("verifications") else results
        target[key] = target[key] | extra
    return results, verifications


def test_identity_acceptance_passes_only_when_every_condition_holds():
    from bench.report import identity_acceptance

    ok = identity_acceptance(*_identity_results())
    assert ok["passed"] is True and ok["checks"]["errors"]["statuses_checked"] is True

    slow = identity_acceptance(*_identity_results(verifications={"per_second": 99.9}))
    assert slow["passed"] is False and slow["checks"]["verifications_per_s"]["ok"] is False

    ratio = identity_acceptance(*_identity_results(identity={"rps": 299}))
    assert ratio["passed"] is False and ratio["checks"]["identity_ratio"]["ok"] is False

    # A verification that ended in a 429, a 503 or a failed face is an error, not a pass.
    failed = identity_acceptance(*_identity_results(verifications={"errors": 2}))
    assert failed["passed"] is False and failed["checks"]["errors"]["by_scenario"]["verifications"] == 2

    wrong = identity_acceptance(*_identity_results(identity={"statuses": {"200": 4400, "404": 100}}))
    assert wrong["passed"] is False and wrong["checks"]["errors"]["by_scenario"]["identity"] == 100

    busy = identity_acceptance(*_identity_results(verifications={"cpu_other_pct": 30.0}))
    assert busy["passed"] is False and busy["checks"]["other_cpu_pct"]["ok"] is False


def test_report_renders_the_real_name_verification_block_and_table():
    from bench.report import identity_acceptance

    outcomes = {"passed": 481, "start 503 identity.provider_unavailable": 3}
    results, verifications = _identity_results(
        verifications={"per_second": 48.1, "errors": 3, "outcomes": outcomes}
    )
    verifications["verifications_alipay"] = _verification(
        40.0, label="start + complete, Alipay", method="alipay_face"
    )
    setup = {"accounts": 64, "workers": 16, "face_limit": 1_000_000, "simulators": {"faceid": "http://x"}}
    data = _report_data(
        results, identity_acceptance=identity_acceptance(results, verifications),
        verifications=verifications, verification_setup=setup,
    )  # fmt: skip
    text = render(data)
    block = text.split("## Acceptance: real-name verification\n", 1)[1].split("\n## ", 1)[0]
    assert "**FAIL**" in block
    assert "48.1 verifications/s (≥ 100) with tencent_faceid" in block and "**fail**" in block
    assert "`GET /v1/identity` rps ratio 0.300× (≥ 0.3) at 32 connections: pass" in block
    assert "3 (identity 0, verifications 3)" in block
    table = text.split("## Real-name verifications\n", 1)[1].split("\n## ", 1)[0]
    assert "| `alipay_face` | 40.0 |" in table
    assert "start 503 identity.provider_unavailable: 3" in table
    assert "simulator 20.0" in table and "redis" not in table.split("CPU ms per passed verification")[1]
    assert "raised to 1,000,000" in text
    raw = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(raw) == data


def test_a_run_without_both_identity_scenarios_is_partial():
    from bench.run import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--only", "me", "service", "service304", "search", "identity"])
    args = parse_args(["--only", "verifications", "--out", "/tmp/x.md"])
    assert args.only == ["bare", "verifications"]


def test_production_env_has_every_secret_production_demands(tmp_path, monkeypatch):
    from bench.environment import production_env
    from bench.verification import BENCH_FACE_LIMIT
    from config import load_config
    from integrations.alipay import rsa2

    ports = {"faceid": 1001, "alipay": 1002, "idcheck": 1003, "wechat": 1004}
    env = production_env("postgresql://u@127.0.0.1:5432/db", "redis://127.0.0.1:1/0", tmp_path, 900, ports)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = load_config()  # ProductionConfig.validate() raises on any development secret
    assert config.ENV_NAME == "production"
    assert config.FACEID_ENDPOINT == "127.0.0.1:1001" and config.IDCHECK_BASE_URL == "http://127.0.0.1:1003/"
    assert config.ALIPAY_GATEWAY == "http://127.0.0.1:1002/gateway.do"
    assert config.WECHAT_API_BASE == "http://127.0.0.1:1004/"
    assert config.FACE_PER_ACCOUNT_PER_DAY == config.FACE_PER_IP_PER_HOUR == BENCH_FACE_LIMIT
    # The app signs with its fresh private key; the simulator is given the matching public key.
    signature = rsa2.sign("x", rsa2.load_private_key(env["ALIPAY_APP_PRIVATE_KEY"]))
    assert rsa2.verify("x", signature, rsa2.load_public_key(env["ALIPAY_SIM_APP_PUBLIC_KEY"]))
    again = production_env("postgresql://u@127.0.0.1:5432/db", "redis://127.0.0.1:1/0", tmp_path, 900, ports)
    assert again["ALIPAY_APP_PRIVATE_KEY"] != env["ALIPAY_APP_PRIVATE_KEY"]
    assert again["IDCHECK_APP_SECRET"] != env["IDCHECK_APP_SECRET"]


def test_bench_people_are_valid_and_distinct():
    from datetime import date

    from bench.seed import bench_ip, bench_person
    from domain.identity.documents import normalise_id_number, normalise_name

    people = [bench_person(i) for i in (*range(0, 19999, 7), 19999)]
    assert len({id_number for _, id_number in people}) == len(people)
    for name, id_number in people:
        assert normalise_name(name) == name and 2 <= len(name) <= 3
        assert normalise_id_number(id_number, today=date(2026, 12, 1)) == id_number
    assert len({bench_ip(i) for i in range(64)}) == 64


class FakeIdentityApi:
    """start answers 201 pending (or a 429 for one citizen); complete answers 200 passed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        path = environ["PATH_INFO"]
        with self.lock:
            self.requests.append({"path": path, "body": body, "auth": environ.get("HTTP_AUTHORIZATION"),
                                  "xff": environ.get("HTTP_X_FORWARDED_FOR")})  # fmt: skip
            n = len(self.requests)
        if path == "/v1/identity/verifications":
            if body.get("name") == "李四":
                status, answer = "429 Too Many Requests", {"error": {"code": "identity.too_many_attempts"}}
            else:
                status, answer = "201 Created", {"verification": {"id": f"v{n}", "status": "pending"}}
        else:
            status, answer = "200 OK", {"verification": {"id": path.split("/")[-2], "status": "passed"}}
        data = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def test_verification_driver_counts_only_passed_pairs(tmp_path):
    from werkzeug.serving import make_server

    from bench.identity_load import MARKER, main

    app = FakeIdentityApi()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    accounts = [
        {"token": "t1", "name": "张三", "id_number": "110101199003078515", "ip": "10.128.0.1"},
        {"token": "t2", "name": "李四", "id_number": "440106198512124413", "ip": "10.128.0.2"},
    ]
    path = tmp_path / "verifiers.jsonl"
    path.write_text("\n".join(json.dumps(a, ensure_ascii=False) for a in accounts) + "\n")
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            main([f"http://127.0.0.1:{server.server_port}", str(path), "--workers", "2", "--duration", "0.5"])
    finally:
        server.shutdown()
        thread.join(timeout=5)
    summary = json.loads(out.getvalue().split(MARKER, 1)[1])
    starts = [r for r in app.requests if r["path"] == "/v1/identity/verifications"]
    completes = [r for r in app.requests if r["path"].endswith("/complete")]
    assert summary["verifications"] == summary["outcomes"]["passed"] > 0
    assert summary["outcomes"]["start 429 identity.too_many_attempts"] > 0
    assert summary["errors"] == summary["outcomes"]["start 429 identity.too_many_attempts"]
    assert summary["per_second"] == round(summary["verifications"] / 0.5, 1)
    assert summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]
    assert summary["requests"] == len(app.requests)
    # Only the citizen whose start succeeded completes; each request carries its citizen's token and address.
    assert {r["auth"] for r in completes} == {"Bearer t1"}
    assert {(r["auth"], r["xff"]) for r in app.requests} == {
        ("Bearer t1", "10.128.0.1"),
        ("Bearer t2", "10.128.0.2"),
    }
    assert all(r["body"]["consent"] == {"accepted": True, "text_version": "face-2026-12"} for r in starts)
    assert {r["body"]["method"] for r in starts} == {"tencent_faceid"}
