"""``ceso vm``: virtual machines."""

from __future__ import annotations

import click

from ceso.cli.vm.clone import clone
from ceso.cli.vm.create import create
from ceso.cli.vm.delete import delete
from ceso.cli.vm.info import info
from ceso.cli.vm.list import list_
from ceso.cli.vm.power import power
from ceso.cli.vm.protect import protect
from ceso.cli.vm.reconfigure import reconfigure
from ceso.cli.vm.snapshot import snapshot
from ceso.cli.vm.unprotect import unprotect


@click.group()
def vm() -> None:
    """List, inspect and change virtual machines."""


for command in (list_, info, create, clone):
    vm.add_command(command)
for command in (delete, protect, unprotect, power, reconfigure, snapshot):  # the VM lifecycle
    vm.add_command(command)
