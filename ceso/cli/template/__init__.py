"""``ceso template``: golden templates."""

from __future__ import annotations

import click

from ceso.cli.template.commands import add, list_, remove, validate
from ceso.cli.template.import_ import import_


@click.group()
def template() -> None:
    """Import, register, validate, list and remove golden templates."""


for command in (import_, add, list_, validate, remove):
    template.add_command(command)
