"""Operator accounts from the command line: create the first operator, lift a lockout."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from core.errors import AppError
from domain.operators.errors import UnknownScope
from domain.operators.models import ROLE_ADMIN, ROLES


def fail(error: AppError) -> click.ClickException:
    """A domain error as a CLI failure (Chinese and English text, no stack trace)."""
    return click.ClickException(f"{error.message('zh')} / {error.message('en')} [{error.code}]")


def _unknown_scope(
    error: UnknownScope, *, hall_ids: tuple[str, ...], department_codes: tuple[str, ...]
) -> click.ClickException:
    """The scope refusal naming each unknown hall and department as given on the command line."""
    unknown = []
    for field, option, values in (
        ("hall_ids", "--hall", hall_ids),
        ("department_codes", "--department", department_codes),
    ):
        for i, value in enumerate(values):
            if f"{field}.{i}" in (error.fields or {}):
                unknown.append(f"{option} {value!r}")
    return click.ClickException(f"{fail(error).message}: {', '.join(unknown)}")


operators = AppGroup("operators", help="Operator accounts of the admin API.")


def _ratelimiter() -> object:
    """The app's rate limiter, where failed logins are counted (an unlock forgets them)."""
    from flask import current_app

    return current_app.extensions["yiwang"].ratelimiter


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@operators.command("create")
@click.option("--username", required=True, help="login name: 3-64 of a-z 0-9 . _ -")
@click.option("--display-name", required=True, help="name shown in the admin UI and audit views")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES),
              help="repeat for several roles")  # fmt: skip
@click.option("--hall", "hall_ids", multiple=True, metavar="HALL_ID",
              help="tie the operator to this hall (repeat for several; none: every hall)")  # fmt: skip
@click.option("--department", "department_codes", multiple=True, metavar="CODE",
              help="tie the operator to this department (repeat for several; none: all)")  # fmt: skip
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
def create_command(
    username: str,
    display_name: str,
    roles: tuple[str, ...],
    hall_ids: tuple[str, ...],
    department_codes: tuple[str, ...],
    password_stdin: bool,
) -> None:
    """Create an operator and print its TOTP secret once (scan the URI into an authenticator app).

    `--hall` and `--department` tie it to halls and departments as the admin API's `hall_ids`
    and `department_codes` do; each must exist, else nothing is created.

    Once an active admin exists, the password typed here is one someone else chose: the operator
    must change it after logging in (`must_change_password`), as after an admin API create. The
    first admin (no active admin yet: bootstrap, or recovery) sets their own and is not asked."""
    from api.deps import services
    from core.db import db
    from domain.operators import service
    from domain.operators.audit_log import CLI_ACTOR

    password = _read_password(password_stdin)
    session = db.session()
    bootstrap = ROLE_ADMIN in roles and not service.has_active_admin(session)
    try:
        created = service.create_operator(
            session, encryptor=services().encryptor, actor=CLI_ACTOR, username=username,
            display_name=display_name, password=password, roles=list(roles),
            hall_ids=list(hall_ids), department_codes=list(department_codes),
            must_change_password=not bootstrap,
        )  # fmt: skip
    except UnknownScope as error:
        raise _unknown_scope(error, hall_ids=hall_ids, department_codes=department_codes) from None
    except AppError as error:
        raise fail(error) from None
    op = created.operator
    click.echo(f"operator created: {op.username} (id {op.id}, roles {', '.join(op.roles)})")
    if op.hall_ids:
        click.echo(f"halls: {', '.join(op.hall_ids)}")
    if op.department_codes:
        click.echo(f"departments: {', '.join(op.department_codes)}")
    if op.must_change_password:
        click.echo("the operator must change this password after logging in (POST /admin/v1/me/password)")
    click.echo("TOTP secret (shown once; store it only in the authenticator app):")
    click.echo(f"  secret: {created.totp_secret}")
    click.echo(f"  uri:    {created.totp_uri}")


@operators.command("unlock")
@click.argument("username")
def unlock_command(username: str) -> None:
    """Lift a lockout after failed logins and reset the failure counter."""
    from core.db import db
    from domain.operators import service
    from domain.operators.audit_log import CLI_ACTOR

    session = db.session()
    try:
        operator = service.find_by_username(session, username)
        service.unlock(session, actor=CLI_ACTOR, operator_id=operator.id, ratelimiter=_ratelimiter())
    except AppError as error:
        raise fail(error) from None
    click.echo(f"operator {operator.username} unlocked")
