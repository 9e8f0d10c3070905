"""Every CLI command group, registered on the Flask app by cli.register_commands."""

from __future__ import annotations

from cli.applications import applications_group
from cli.catalog import catalog_group
from cli.jobs import jobs
from cli.operators import operators
from cli.system import keys, migrate_command, seed_command

COMMANDS: list = [migrate_command, seed_command, keys, operators, jobs, catalog_group, applications_group]
