"""``ceso backup``: create, list, verify, restore, drill, delete, prune and import backups; the encryption key."""

from __future__ import annotations

import click

from ceso.cli.backup.commands import delete, import_, list_, prune, verify
from ceso.cli.backup.create import create
from ceso.cli.backup.drill import drill
from ceso.cli.backup.key import key
from ceso.cli.backup.restore import restore


@click.group()
def backup() -> None:
    """Streamed, compressed, checksummed (optionally encrypted) VM backups and their restores."""


for command in (create, list_, verify, restore, drill, delete, prune, import_, key):
    backup.add_command(command)
