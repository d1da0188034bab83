"""``ceso job status``: agents poll this, so it imports as little as it can."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("job_id", metavar="ID")
@pass_app
def status(app: Application, job_id: str) -> None:
    """Show one job (ID, or a unique prefix of it): state, progress, steps, result or error."""
    from ceso.jobs.direct import read_job
    from ceso.jobs.ids import is_full_job_id
    from ceso.settings import get_settings

    if not is_full_job_id(job_id):  # a prefix: found through SQLAlchemy, then read as usual
        from ceso.jobs.lookup import expand_job_id

        job_id = expand_job_id(app.runtime.engine, job_id)
    # Agents poll this: read the row with the database driver when that can answer
    # (ceso.jobs.direct), else through SQLAlchemy, which also sets up a new database.
    job = read_job(get_settings(app.config).database_url, job_id)
    if job is None:
        from sqlmodel import Session

        from ceso.jobs.store import get_job, job_to_dict

        with Session(app.runtime.engine) as session:
            job = job_to_dict(get_job(session, job_id))

    def human() -> None:
        click.echo(
            f"job {job['id']}: {job['kind']} on {job['host']}"
            + (f" for {job['target']}" if job["target"] else "")
        )
        click.echo(
            f"  state: {job['state']} ({job['progress']}%), attempts {job['attempts']}, actor {job['actor']}"
        )
        for step in job["steps"]:
            pending = ", cleanup pending" if step.get("pending") else ""
            click.echo(f"  - {step['name']}: {step['state']}{pending} ({step.get('duration_s', '?')} s)")
        if job["result"]:
            from ceso.cli.render import mapping_lines

            click.echo("  result:")
            for line in mapping_lines(job["result"], "    "):
                click.echo(line)
        if job["error"]:
            click.echo(f"  error: {job['error']['code']}: {job['error']['message']}")

    app.emit(job, human)
