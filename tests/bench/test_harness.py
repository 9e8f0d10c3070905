"""The benchmark harness: acceptance verdict, report, token split and the wrk Lua scripts."""

from __future__ import annotations

import json
import shutil
import stat
import threading
from collections.abc import Iterator

import pytest

from bench.load import run_wrk, split_tokens
from bench.report import acceptance, render


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
                "xff": environ.get("HTTP_X_FORWARDED_FOR"), "body": body,
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
