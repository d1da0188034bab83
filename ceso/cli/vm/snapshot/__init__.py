"""``ceso vm snapshot``: a VM's snapshots."""

from __future__ import annotations

import click

from ceso.cli.vm.snapshot.create import create
from ceso.cli.vm.snapshot.delete import delete
from ceso.cli.vm.snapshot.list import list_
from ceso.cli.vm.snapshot.revert import revert


@click.group()
def snapshot() -> None:
    """Create, list, revert to and delete a VM's snapshots."""


for command in (create, list_, revert, delete):
    snapshot.add_command(command)
