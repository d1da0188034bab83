"""``ceso template``: golden templates."""

from __future__ import annotations

import click

from ceso.cli.template.commands import add, list_, remove, validate


@click.group()
def template() -> None:
    """Register, validate, list and remove golden templates."""


for command in (add, list_, validate, remove):
    template.add_command(command)
