"""`python -m bench.submit_cpu`: the CPU one submission costs yiwang's own process.

The load benchmark (`python -m bench.run`, scenario application_submit) gives the figure the
issue names, but on a 2-core VM its runs of the same code vary by about ±15 %: a change worth
3 % cannot be seen there. This tool measures what such a change moves, within about ±4 % from
run to run: on a throwaway PostgreSQL database (Alembic schema) and a private Redis, with the
production configuration and the load benchmark's seeded drafts, it submits `--n` drafts one
after another through the Flask test client (after `--warmup` unmeasured ones) and reports the
process CPU time and wall time per submission, and beside it the CPU the PostgreSQL backends
serving the database and the Redis server spent meanwhile (per submission).

Compare two commits by running it in a checkout of each, alternately, three times each on a
quiet machine, and comparing the means. Exit status 0 when every submission answered 200, 2
when the run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench import applications_load as apps
from bench.environment import production_env
from bench.infra import BenchDatabase, BenchError, PrivateRedis, add_database_url, cpu_seconds


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.submit_cpu", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="measured submissions")
    p.add_argument("--warmup", type=int, default=200, help="unmeasured submissions first")
    add_database_url(p)
    args = p.parse_args(argv)
    if args.n < 1 or args.warmup < 0:
        p.error("--n must be at least 1 and --warmup at least 0")
    return args


def _drafts(env: dict[str, str], work: Path, count: int) -> list[tuple[str, str, str]]:
    """(application id, consent text version, access token) of `count` complete drafts."""
    applications = apps.Applications(env, work)
    applications.setup()
    prefix = applications.drafts.files(count, 1)
    return [tuple(line.split()) for line in Path(prefix + ".0").read_text().splitlines()]  # type: ignore[misc]


def _submit_all(client: object, drafts: list[tuple[str, str, str]]) -> None:
    for app_id, version, token in drafts:
        resp = client.post(  # type: ignore[attr-defined]
            f"/v1/applications/{app_id}/submit",
            json={"consent": {"accepted": True, "text_version": version}},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"cpu-{app_id}"},
        )
        if resp.status_code != 200:
            raise BenchError(f"submit answered {resp.status_code}: {resp.get_data(as_text=True)[:500]}")


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    saved = os.dup(2)
    try:
        with open(path, "ab") as f:
            os.dup2(f.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def measure(args: argparse.Namespace, work: Path) -> dict:
    db = BenchDatabase(args.database_url)
    redis = None
    try:
        db.create()
        redis = PrivateRedis(work)
        # As under gunicorn, whose access log replaces the app's (and runs for bare Flask too).
        env = production_env(db.url, redis.url, work, 3600) | {"APP_ACCESS_LOG": "0"}
        drafts = _drafts(env, work, args.warmup + args.n)
        os.environ.update(env)
        with _stderr_to(work / "app.log"):  # the app's warnings, if any
            from factory import create_app

            client = create_app().test_client()
            _submit_all(client, drafts[: args.warmup])
            # The warm-up opened every connection the submissions use.
            servers = {"postgresql": db.backend_pids(), "redis": [redis.pid]}
            before = {name: sum(cpu_seconds(pids).values()) for name, pids in servers.items()}
            cpu, wall = time.process_time(), time.perf_counter()
            _submit_all(client, drafts[args.warmup :])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            after = {name: sum(cpu_seconds(pids).values()) for name, pids in servers.items()}
        result = {
            "submissions": args.n,
            "cpu_ms_per_submission": round(1000 * cpu / args.n, 3),
            "wall_ms_per_submission": round(1000 * wall / args.n, 3),
        }
        for name in servers:
            result[f"{name}_cpu_ms_per_submission"] = round(1000 * (after[name] - before[name]) / args.n, 3)
        return result
    finally:
        if redis is not None:
            redis.stop()
        db.drop()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="yiwang-submit-cpu-") as tmp:
        try:
            result = measure(args, Path(tmp))
        except BenchError as exc:
            print(f"submit_cpu failed: {exc}", file=sys.stderr)
            return 2
    print(
        f"{result['cpu_ms_per_submission']:.3f} ms of CPU and {result['wall_ms_per_submission']:.3f} ms"
        f" of wall time per submission ({result['submissions']} submissions, one at a time);"
        f" PostgreSQL {result['postgresql_cpu_ms_per_submission']:.3f} ms,"
        f" Redis {result['redis_cpu_ms_per_submission']:.3f} ms of CPU"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
