"""``ceso vm``: virtual machines (each subcommand imported when used, :mod:`ceso.cli.lazy`)."""

from __future__ import annotations

import click

from ceso.cli.lazy import LazyGroup

_COMMANDS = {
    "list": "ceso.cli.vm.list:list_",
    "info": "ceso.cli.vm.info:info",
    "create": "ceso.cli.vm.create:create",
    "clone": "ceso.cli.vm.clone:clone",
    "delete": "ceso.cli.vm.delete:delete",
    "protect": "ceso.cli.vm.protect:protect",
    "unprotect": "ceso.cli.vm.unprotect:unprotect",
    "power": "ceso.cli.vm.power:power",
    "reconfigure": "ceso.cli.vm.reconfigure:reconfigure",
    "snapshot": "ceso.cli.vm.snapshot:snapshot",
}


@click.group(cls=LazyGroup, lazy_commands=_COMMANDS)
def vm() -> None:
    """List, inspect and change virtual machines."""
