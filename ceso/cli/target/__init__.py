"""``ceso target``: where backups are stored."""

from __future__ import annotations

import click

from ceso.cli.target.add import add
from ceso.cli.target.commands import check, list_, remove


@click.group()
def target() -> None:
    """Add, list, check and remove backup targets (local directory, SFTP, S3, datastore)."""


for command in (add, list_, check, remove):
    target.add_command(command)
