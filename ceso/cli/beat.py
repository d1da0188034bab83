"""``ceso beat``: the one Celery beat that sends scheduled backups and pruning."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app

BEAT_LOCK = "beat:ceso"


@click.command()
@click.option(
    "--loglevel", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
@pass_app
def beat(app: Application, loglevel: str) -> None:
    """Send the backups and the prune of `backups.schedules` / `backups.prune_cron` when due (UTC).

    Exactly one beat runs: a second one exits with code 5 while the first holds
    its lock in Redis. Workers of the hosts named in the schedules run the jobs.
    """
    import os

    from ceso.backup.schedule import beat_schedule
    from ceso.constants import ENV_CONFIG
    from ceso.log import configure_logging

    if app.config:
        os.environ[ENV_CONFIG] = app.config
    settings = app.runtime.settings
    schedule = beat_schedule(settings.backups)  # ConfigError before anything starts
    configure_logging()
    holder = f"beat@{os.uname().nodename}:{os.getpid()}"
    with app.runtime.locks.hold([BEAT_LOCK], holder=holder, wait_s=0):
        from workers.app import app as celery_app

        celery_app.conf.beat_schedule = schedule
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        click.echo(f"ceso beat: {len(schedule)} schedule(s): {', '.join(schedule) or 'none'}", err=True)
        celery_app.Beat(
            loglevel=loglevel.upper(), schedule=str(settings.data_dir / "celerybeat-schedule"), quiet=True
        ).run()
