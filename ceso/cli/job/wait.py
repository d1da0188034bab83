"""``ceso job wait``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import Seconds


@click.command()
@click.argument("job_id", metavar="ID")
@click.option(
    "--timeout",
    type=Seconds(min=0),
    default=None,
    metavar="SECONDS",
    help="Give up waiting after this long (exit 1; the job goes on).",
)
@pass_app
def wait(app: Application, job_id: str, timeout: float | None) -> None:
    """Wait for job ID (or a unique prefix of it) to end; exit 1 if it failed or was cancelled."""
    from ceso.jobs.lookup import expand_job_id

    app.follow(expand_job_id(app.runtime.engine, job_id), timeout=timeout)
