"""``ceso schedule``: the schedules that ``ceso beat`` fires."""

from __future__ import annotations

import click

from ceso.cli.schedule.list import list_


@click.group()
def schedule() -> None:
    """Show the backup and prune schedules and how they last ran."""


schedule.add_command(list_)
