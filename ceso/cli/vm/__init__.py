"""``ceso vm``: virtual machines."""

from __future__ import annotations

import click

from ceso.cli.vm.clone import clone
from ceso.cli.vm.create import create
from ceso.cli.vm.info import info
from ceso.cli.vm.list import list_


@click.group()
def vm() -> None:
    """List, inspect and change virtual machines."""


for command in (list_, info, create, clone):
    vm.add_command(command)
