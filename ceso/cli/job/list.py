"""``ceso job list``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.constants import JOB_LIST_MAX

STATES = ["queued", "running", "succeeded", "failed", "cancelled"]


@click.command("list")
@click.option("--host", help="Only jobs of this host.")
@click.option("--state", type=click.Choice(STATES), help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(1, JOB_LIST_MAX), default=50, show_default=True)
@pass_app
def list_(app: Application, host: str | None, state: str | None, limit: int) -> None:
    """List jobs, newest first."""
    from sqlmodel import Session

    from ceso.jobs.store import job_to_dict, list_jobs

    with Session(app.runtime.engine) as session:
        jobs = [job_to_dict(j) for j in list_jobs(session, host=host, state=state, limit=limit)]
    app.emit(
        jobs,
        lambda: app.table(
            ["id", "kind", "host", "target", "state", "progress", "created"],
            [
                [j["id"], j["kind"], j["host"], j["target"], j["state"], j["progress"], j["created_at"]]
                for j in jobs
            ],
        ),
    )
