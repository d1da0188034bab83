"""``ceso job``: the job queue."""

from __future__ import annotations

import click

from ceso.cli.job.cancel import cancel
from ceso.cli.job.list import list_
from ceso.cli.job.status import status
from ceso.cli.job.wait import wait


@click.group()
def job() -> None:
    """List, inspect, wait for and cancel jobs."""


for command in (list_, status, wait, cancel):
    job.add_command(command)
