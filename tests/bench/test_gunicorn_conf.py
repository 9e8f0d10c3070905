"""gunicorn.conf.py: worker count, environment overrides and the JSON access log."""

from __future__ import annotations

import json
import runpy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def load(monkeypatch, **env):
    for name in ("GUNICORN_WORKERS", "GUNICORN_BIND", "GUNICORN_ACCESS_LOG", "GUNICORN_CONTROL_SOCKET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_defaults_are_local_and_bounded(monkeypatch):
    conf = load(monkeypatch)
    assert conf["bind"] == ["127.0.0.1:8000"]
    assert conf["workers"] == conf["default_workers"](conf["cpu_count"]())
    assert [conf["default_workers"](n) for n in (1, 2, 4, 64)] == [2, 3, 5, 12]
    assert conf["max_requests"] > 0 and 0 < conf["max_requests_jitter"] < conf["max_requests"]
    assert conf["timeout"] > 0 and conf["graceful_timeout"] > 0 and conf["keepalive"] > 0
    assert conf["preload_app"] is False
    assert conf["control_socket_disable"] is True


def test_environment_overrides(monkeypatch):
    conf = load(monkeypatch, GUNICORN_WORKERS="3", GUNICORN_BIND="0.0.0.0:9000", GUNICORN_ACCESS_LOG="off")
    assert conf["workers"] == 3
    assert conf["bind"] == ["0.0.0.0:9000"]
    assert conf["accesslog"] is None


def test_cpu_count_honours_a_cgroup_quota(monkeypatch, tmp_path):
    conf = load(monkeypatch)
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("50000 100000\n")  # half a CPU
    assert conf["cpu_count"](cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    unlimited = conf["cpu_count"](cpu_max)
    assert unlimited == conf["cpu_count"](tmp_path / "missing")
    assert unlimited >= 1


class _Resp:
    status = "200 OK"
    sent = 57
    headers = [("Content-Type", "application/json"), ("X-Request-ID", "req-12345678")]


def _access_line(monkeypatch, tmp_path, environ) -> str:
    from gunicorn.config import Config

    conf = load(monkeypatch)
    log_file = tmp_path / "access.log"
    cfg = Config()
    cfg.set("accesslog", str(log_file))
    logger = conf["JsonAccessLogger"](cfg)
    try:
        logger.access(_Resp(), None, environ, timedelta(milliseconds=12, microseconds=345))
    finally:
        for handler in logger.access_log.handlers:
            handler.flush()
    return log_file.read_text()


@pytest.fixture
def restore_gunicorn_loggers():
    import logging

    loggers = [logging.getLogger("gunicorn.access"), logging.getLogger("gunicorn.error")]
    saved = [list(lg.handlers) for lg in loggers]
    yield
    for lg, handlers in zip(loggers, saved, strict=True):
        for handler in lg.handlers:
            if handler not in handlers:
                handler.close()
        lg.handlers[:] = handlers


def test_access_log_is_one_json_object_without_query_or_personal_data(
    monkeypatch, tmp_path, restore_gunicorn_loggers
):
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/v1/lookup/13812345678",
        "QUERY_STRING": "phone=13912345678&code=654321",
        "RAW_URI": "/v1/lookup/13812345678?phone=13912345678&code=654321",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_REFERER": "https://example.cn/?token=secret-token",
    }
    text = _access_line(monkeypatch, tmp_path, environ)
    lines = text.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["method"] == "GET"
    assert entry["path"] == "/v1/lookup/138****5678"
    assert entry["status"] == 200
    assert entry["bytes"] == 57
    assert entry["ms"] == 12.35
    assert entry["request_id"] == "req-12345678"
    for secret in ("13812345678", "13912345678", "654321", "secret-token", "phone="):
        assert secret not in text


def test_access_log_survives_quotes_backslashes_and_newlines_in_the_path(
    monkeypatch, tmp_path, restore_gunicorn_loggers
):
    path = '/v1/x"y\\z\nInjected: yes'
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1"}
    lines = _access_line(monkeypatch, tmp_path, environ).splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["path"] == path


def _ignores_sigint(pid: int) -> bool:
    """The process ignores SIGINT (Linux: the SigIgn mask in /proc/<pid>/status)."""
    import signal

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)
    return False


def _gunicorn(**env: str) -> tuple[Any, int]:
    """gunicorn with this configuration serving the bare app on a free port, in its own process
    group (the caller stops it); the process and the port."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(CONF), "bench.bare_app:app"],
        cwd=CONF.parent, env=os.environ | {"GUNICORN_BIND": f"127.0.0.1:{port}", **env},
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, port


def test_ctrl_c_stops_the_master_and_its_workers_without_a_worker_left_behind(tmp_path):
    """Ctrl-C reaches the whole process group; a worker's own SIGINT must not run its quit
    handler beside the one the master's SIGQUIT runs (the second, inside the first, hung the
    worker): workers leave SIGINT to the master."""
    import os
    import signal
    import subprocess
    import time

    import requests

    proc, port = _gunicorn(GUNICORN_WORKERS="2")
    try:
        deadline = time.monotonic() + 30
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
            workers = [int(p) for p in out.split()]
        assert len(workers) == 2, "gunicorn did not start its workers"
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/json", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        # One worker answering says nothing of the other, which may still be booting (a SIGINT
        # before post_worker_init is gunicorn's own quit): wait until both ignore SIGINT.
        while time.monotonic() < deadline and not all(_ignores_sigint(pid) for pid in workers):
            time.sleep(0.1)
        assert all(_ignores_sigint(pid) for pid in workers), "a worker never finished booting"
        os.kill(workers[0], signal.SIGINT)  # a stray Ctrl-C to one worker alone changes nothing
        time.sleep(1)
        assert os.waitpid(proc.pid, os.WNOHANG) == (0, 0)
        os.kill(workers[0], 0)  # still there
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole group
        proc.wait(timeout=30)
        time.sleep(0.5)
        for pid in workers:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            raise AssertionError(f"worker {pid} outlived its master")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(v)
                        for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                        if k.lower() == b"content-length"
                    ),
                    None,
                )
                if length is not None and len(body) >= length:
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_what_gunicorn_refuses_itself_is_answered_in_the_error_format(tmp_path):
    """An oversized header, an overlong request line, a NUL in a header: gunicorn answers before
    the app sees the request, and the phone still gets JSON it can read, not an HTML page."""
    import os
    import signal
    import subprocess
    import time

    proc, port = _gunicorn(GUNICORN_WORKERS="1", GUNICORN_ACCESS_LOG="off")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _raw(port, b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        long_query = b"GET /json?q=" + b"a" * 6000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert _raw(port, long_query)[0] == 200  # within the raised limit
        cases = {
            431: b"GET /json HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n",
            414: b"GET /json?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            400: b"GET /json HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
        }
        for status, request in cases.items():
            got, headers, body = _raw(port, request)
            assert got == status, (status, got, body[:200])
            assert headers["content-type"] == "application/json"
            error = json.loads(body)["error"]
            assert error["code"] and error["message"] and error["request_id"] == headers["x-request-id"]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
