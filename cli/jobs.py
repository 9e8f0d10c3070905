"""Background jobs from the command line: list them, replay a dead one."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from cli.operators import fail
from core.errors import AppError
from domain.operators.jobs import JOB_STATUSES

jobs = AppGroup("jobs", help="Background jobs (outbox) and dead letters.")


@jobs.command("list")
@click.option("--status", type=click.Choice(JOB_STATUSES), help="only jobs in this state, e.g. dead")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def list_command(status: str | None, limit: int) -> None:
    """Jobs, newest first, with their attempts and last error."""
    from core.db import db
    from domain.operators import jobs as job_service

    rows = job_service.list_jobs(db.session(), status=status, limit=limit)
    if not rows:
        click.echo("no jobs")
        return
    for job in rows:
        error = (job.last_error or "").replace("\n", " ")[:120]
        click.echo(
            f"{job.id}  {job.status:<9} {job.name:<24} attempts {job.attempts}/{job.max_attempts}  "
            f"{job.updated_at:%Y-%m-%d %H:%M:%S}Z  {error}"
        )


@jobs.command("replay")
@click.argument("job_id")
def replay_command(job_id: str) -> None:
    """Put a dead job back in the queue with fresh attempts."""
    from core.db import db
    from domain.operators import jobs as job_service
    from domain.operators.audit_log import CLI_ACTOR

    try:
        job = job_service.replay(db.session(), actor=CLI_ACTOR, job_id=job_id)
    except AppError as error:
        raise fail(error) from None
    click.echo(f"job {job.id} ({job.name}) replayed: status {job.status}")
