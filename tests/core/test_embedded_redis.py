"""With no REDIS_URL, one embedded Redis is started and shared by every local process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from core.redis import resolve_url, stop_embedded

ROOT = Path(__file__).resolve().parents[2]


def test_processes_share_one_embedded_server(tmp_path):
    code = (
        "import sys; from pathlib import Path; from core.redis import resolve_url;"
        "print(resolve_url(None, Path(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    urls = {p.communicate(timeout=60)[0].strip() for p in procs}
    try:
        assert len(urls) == 1
        url = urls.pop()
        assert url == f"unix://{tmp_path / 'redis.sock'}"
        client = redis.Redis.from_url(url)
        client.set("shared", "yes")
        # A later process (an RQ worker, say) finds the same server and its data.
        assert resolve_url(None, tmp_path) == url
        assert redis.Redis.from_url(resolve_url(None, tmp_path)).get("shared") == b"yes"
        assert int(client.info("server")["process_id"]) == int((tmp_path / "redis.pid").read_text())
    finally:
        stop_embedded(tmp_path, save=False)


def test_configured_url_wins(tmp_path):
    assert resolve_url("redis://10.0.0.1:6379/0", tmp_path) == "redis://10.0.0.1:6379/0"
    assert not (tmp_path / "redis.sock").exists()
