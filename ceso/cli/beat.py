"""``ceso beat``: the scheduler of backups and pruning, safe to run on several machines."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.option(
    "--loglevel", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
@pass_app
def beat(app: Application, loglevel: str) -> None:
    """Send the backups and the prune of `backups.schedules` / `backups.prune_cron` when due (UTC).

    Run one on each of two machines for a standby: one leads (it holds a lease
    in Redis), the other takes over within `locks.ttl_s` plus 5 s when the
    leader dies. Each fired slot is recorded in SQL once (`ceso schedule list`).
    Workers of the hosts named in the schedules run the jobs. Stops on SIGTERM
    or Ctrl-C.
    """
    import contextlib
    import logging
    import os
    import signal
    from datetime import datetime

    from ceso.backup.schedule import schedule_entries
    from ceso.beat.entries import ScheduleEntry
    from ceso.beat.leader import Scheduler
    from ceso.jobs.publish import publish_task
    from ceso.log import configure_logging

    runtime = app.runtime
    entries = schedule_entries(runtime.settings.backups)  # ConfigError before anything starts
    runtime.engine  # noqa: B018  (fail fast: bad config or unreachable database)
    configure_logging(logging.getLevelNamesMapping()[loglevel.upper()])
    holder = f"beat@{os.uname().nodename}:{os.getpid()}"
    broker = runtime.settings.redis_url

    def send(entry: ScheduleEntry, slot: datetime, fire_id: int) -> None:
        publish_task(
            broker,
            entry.task,
            queue=entry.queue,
            args=list(entry.args),
            kwargs={"slot": slot.isoformat(), "fire": fire_id},
        )

    scheduler = Scheduler(runtime, entries, holder=holder, send=send)
    signal.signal(signal.SIGTERM, lambda _sig, _frame: scheduler.stop())
    click.echo(
        f"ceso beat ({holder}): {len(entries)} schedule(s): {', '.join(e.key for e in entries) or 'none'}",
        err=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        scheduler.run()
    click.echo("ceso beat stopped", err=True)
