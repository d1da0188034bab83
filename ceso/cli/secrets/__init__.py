"""``ceso secrets``: the installation's master key and the secrets encrypted under it in SQL."""

from __future__ import annotations

import click

from ceso.cli.secrets.commands import check, import_, init, rotate


@click.group()
def secrets() -> None:
    """Make, check and rotate the master key of `secret_store: sql`."""


for command in (init, check, rotate, import_):
    secrets.add_command(command)
