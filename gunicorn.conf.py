"""gunicorn settings for yiwang: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be overridden from the environment (GUNICORN_*), so one file serves a laptop,
a 2-core VM and a large host. `python -m bench.run` serves its bare-Flask baseline with this
same file, so the benchmark measures the production settings.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def cpu_count(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may really use: affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def default_workers(cores: int) -> int:
    """cores + 1 processes, at least 2 and at most 12; each runs `threads` threads.

    gunicorn's classic 2 × cores + 1 is for sync workers, where processes are the only way to
    overlap I/O. Here every worker is gthread: its threads overlap database, Redis and upstream
    waits, so more processes than cores only add context switches, memory and database
    connections. Measured on 2 cores (docs/benchmarks.md, same run): 3 workers × 4 threads served
    GET /v1/me at 2121 rps (p99 40 ms), 5 × 4 at 1836 rps (p99 62 ms). Two is the floor so one
    restarting worker never leaves the port unserved; twelve the ceiling: add hosts, not workers.
    """
    return max(2, min(cores + 1, 12))


bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
workers = _env_int("GUNICORN_WORKERS", default_workers(cpu_count()))

# gthread, not sync: views wait on upstream APIs (WeChat, SMS, face verification) for up to
# their client timeouts, and a sync worker waiting on one is lost to every other caller; with
# threads, other requests run meanwhile. On the 2-core benchmark machine sync was no faster for
# GET /v1/me (GUNICORN_WORKER_CLASS=sync make bench). Keep 2 × threads <= DATABASE_POOL_SIZE: each
# busy thread holds a database connection, and a submission briefly a second one.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = _env_int("GUNICORN_THREADS", 4)
# Open connections (busy or kept alive) one worker holds before it stops accepting more.
# A worker runs only `threads` requests at a time, so it keeps 4 × threads: enough to keep its
# threads busy and to take its share of a burst of new connections while earlier ones are still
# closing, few enough that keep-alive connections spread over all workers instead of piling onto
# the first one awake (measured on 2 cores, GET /v1/me at 32 connections: 1000 per worker split
# them 12901/12823/1161 requests, 12 split them 10308/9651/9157 with more throughput). At
# 3 × threads (12) the paced booking benchmark (32 new connections right after another 32 closed)
# left some connections in the listen backlog: client p99 79-114 ms while gunicorn's own p99 was
# 13-33 ms; at 16 the client p99 was 16.7 ms (docs/benchmarks-appointments.md). Connections beyond
# every worker's share wait in the listen backlog. Behind a load balancer that pools upstream
# connections, set this to at least that pool's size divided by the number of workers.
worker_connections = _env_int("GUNICORN_WORKER_CONNECTIONS", threads * 4)
# A gthread worker keeps every keep-alive connection it accepted, so a few long-lived balancer
# connections can all land on one worker. SO_REUSEPORT (one socket per worker, the kernel
# spreads connections) evens that out, but a stopping worker (max_requests, reload) then resets
# connections still queued on its socket unless net.ipv4.tcp_migrate_req=1 (the benchmark saw
# such resets at every restart): off by default.
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "0") == "1"

# A worker silent for `timeout` seconds is killed and replaced. Views that call upstream APIs
# use client timeouts of a few seconds, so 30 s only ever catches a hung worker.
timeout = _env_int("GUNICORN_TIMEOUT", 30)
# On SIGTERM or a restart, in-flight requests get this long to finish.
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Seconds an idle keep-alive connection stays open. Behind a load balancer this must exceed the
# balancer's upstream idle timeout, or the balancer reuses sockets gunicorn has just closed.
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)

# Restart each worker after this many requests (jittered so they do not restart together):
# a slow leak in any library then costs bounded memory instead of an out-of-memory kill. A
# restart briefly stalls the connections that worker held (a new app takes about a second to
# build), so it should be rare: at a busy 300 requests per second per worker, every ~5 minutes.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 100000)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 10000)

# No preload: each worker builds its own app after the fork. create_app() opens a database
# engine and a Redis client, and later features may start threads there; a thread does not
# survive fork() and a pooled socket shared by two processes corrupts both. Preloading would
# save a little memory and make restarts faster; if it is turned on (GUNICORN_PRELOAD=1),
# post_fork below drops the inherited connections.
preload_app = os.environ.get("GUNICORN_PRELOAD", "0") == "1"

# Requests gunicorn refuses before the app sees them. The request line and each header may be
# twice gunicorn's defaults (4094 / 8190 bytes): a long query of the catalog search, a webview's
# cookies. What still does not pass (or a malformed header or length) is answered in the app's
# error format, not gunicorn's HTML page (`write_json_error` below).
limit_request_line = _env_int("GUNICORN_LIMIT_REQUEST_LINE", 8190)
limit_request_field_size = _env_int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 16380)

# Proxies whose X-Forwarded-Proto gunicorn believes (list the load balancers). Client IPs are
# the app's business: TRUSTED_PROXY_HOPS.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs: gunicorn's own messages to stderr, one JSON access line per request to stdout.
# GUNICORN_ACCESS_LOG=off disables the access line (the app also logs each request as JSON).
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
_access = os.environ.get("GUNICORN_ACCESS_LOG", "-")
accesslog = None if _access.lower() in ("off", "none", "0", "") else _access
if accesslog:
    # One line per request: gunicorn's (below, with the account id) replaces the app's own.
    os.environ.setdefault("APP_ACCESS_LOG", "0")
proc_name = os.environ.get("GUNICORN_PROC_NAME", "yiwang")

# gunicorn's runtime control socket (gunicornc: change the worker count, reload, stop) stays
# off unless a path is given: it is one more way to stop the service, and its default path
# ($HOME/.gunicorn/gunicorn.ctl) would be shared by every instance the same user runs.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket


class JsonAccessLogger(Logger):
    """Writes one JSON object per request line; never the query string, referrer or cookies.

    gunicorn's access_log_format only escapes double quotes, so a path with a backslash or an
    encoded newline would break the line: serialising with json.dumps cannot.
    """

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        from core.masking import redact_text  # the app's rule for phones and ID numbers in text

        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        request_id = ""
        for name, value in getattr(resp, "headers", None) or []:
            if name.lower() == "x-request-id":
                request_id = value
                break
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "logger": "gunicorn.access",
            "method": environ.get("REQUEST_METHOD"),
            # PATH_INFO only: query strings may carry personal data (codes, phones, tokens).
            "path": redact_text(environ.get("PATH_INFO", "")),
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "ms": round(request_time.total_seconds() * 1000, 2),
            "request_id": request_id,
            "peer": environ.get("REMOTE_ADDR"),
            "account": environ.get("yiwang.account"),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(entry, ensure_ascii=False))
        except Exception:  # a log line must never fail a request
            self.exception("access log failed")


logger_class = JsonAccessLogger


def post_worker_init(worker: Any) -> None:
    """Load yiwang's catalog read model before the worker takes requests (no-op for other apps),
    let long requests (live streams) see when the worker is told to stop, leave SIGINT to the
    master (below), and move everything
    loaded so far out of the garbage collector's sight.

    A full collection walks every tracked object: with the app, its mappers, schemas and the
    catalog loaded that is ~100 ms with the GIL held, every thread of the worker stalled: the
    p99 of whatever requests were in flight. Frozen objects are never walked again (they are
    long-lived by construction; a catalog snapshot replaced later is freed by reference counting).
    """
    import gc
    import signal
    import sys

    # Ctrl-C in a terminal reaches every process of the group: the master, which then tells each
    # worker to quit (SIGQUIT), and the workers themselves. A gthread worker's quit handler run a
    # second time inside the first (inside ThreadPoolExecutor.shutdown's lock) deadlocks: the
    # worker outlives the master, holding the port. The master's word is enough.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lifecycle = sys.modules.get("core.lifecycle")
    if lifecycle is not None:
        lifecycle.register(lambda: bool(worker.alive))
    wsgi_module = sys.modules.get("wsgi")
    if wsgi_module is not None and hasattr(wsgi_module, "warm_catalog"):
        wsgi_module.warm_catalog()
    gc.collect()
    gc.freeze()


def post_fork(server: Any, worker: Any) -> None:
    """With preload_app, drop database and Redis connections inherited from the master."""
    if not server.cfg.preload_app:
        return
    import sys

    db_module = sys.modules.get("core.db")
    if db_module is not None and db_module.db.engine is not None:
        # close=False: leave the master's sockets alone, just forget them in this child.
        db_module.db.engine.dispose(close=False)
    redis_module = sys.modules.get("core.redis")
    if redis_module is not None and redis_module.redis_holder.client is not None:
        redis_module.redis_holder.client.connection_pool.reset()


# The error format (api/errors.py) for what gunicorn answers itself; Chinese, as the app's
# default, since the request's Accept-Language may be what could not be read.
_GUNICORN_ERRORS = {
    400: ("request.bad_request", "请求格式有误"),
    403: ("auth.forbidden", "没有权限执行此操作"),
    414: ("request.uri_too_long", "请求地址过长"),
    417: ("request.expectation_failed", "不支持该 Expect 请求头"),
    431: ("request.headers_too_large", "请求头过大"),
    500: ("internal_error", "服务器开小差了，请稍后再试"),
    501: ("request.not_implemented", "不支持该传输编码"),
}


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Replaces gunicorn.util.write_error: gunicorn's own refusals in the error format, with a
    request id as the app gives (never echoing what was refused: it may be personal data)."""
    import secrets

    from gunicorn import util

    code, message = _GUNICORN_ERRORS.get(status_int, (f"http_{status_int}", reason))
    request_id = secrets.token_hex(16)
    body = json.dumps(
        {"error": {"code": code, "message": message, "request_id": request_id}}, ensure_ascii=False
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def _answer_refusals_as_json() -> None:
    import gunicorn.util

    gunicorn.util.write_error = write_json_error  # looked up at each call by the workers


_answer_refusals_as_json()
