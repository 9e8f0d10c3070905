"""Operator commands (`flask --app wsgi ...`): migrate, seed, keys, operators, jobs."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    from cli.commands import COMMANDS

    for command in COMMANDS:
        app.cli.add_command(command)
