"""``ceso job cancel``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("job_id", metavar="ID")
@pass_app
def cancel(app: Application, job_id: str) -> None:
    """Cancel job ID (or a unique prefix of it): at once if queued, at its next step if running."""
    from ceso.jobs.cancel import cancel_job
    from ceso.jobs.lookup import expand_job_id
    from ceso.jobs.store import job_to_dict

    job = cancel_job(app.runtime, expand_job_id(app.runtime.engine, job_id))
    verdict = {"cancelled": "cancelled", "running": "cancel requested; it stops at its next step"}.get(
        job.state, f"already {job.state}; nothing to cancel"
    )
    app.emit(job_to_dict(job), lambda: click.echo(f"job {job.id}: {verdict}"))
