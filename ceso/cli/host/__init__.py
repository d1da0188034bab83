"""``ceso host``: the registry of ESXi hosts."""

from __future__ import annotations

import click

from ceso.cli.host.add import add
from ceso.cli.host.check import check
from ceso.cli.host.list import list_
from ceso.cli.host.ping import ping
from ceso.cli.host.remove import remove


@click.group()
def host() -> None:
    """Register, list, check and remove ESXi hosts."""


for command in (add, list_, check, ping, remove):
    host.add_command(command)
