"""``ceso schedule list``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command("list")
@pass_app
def list_(app: Application) -> None:
    """List each schedule of the configuration: its last firing (when, by the leading `ceso beat`,
    and what its jobs did) and its next one (UTC). A schedule is overdue when a slot passed
    unfired for over 5 minutes: no `ceso beat` was leading."""
    from ceso.backup.schedule import schedule_entries
    from ceso.beat.status import schedule_status
    from ceso.db.types import utcnow

    rows = schedule_status(app.runtime, schedule_entries(app.runtime.settings.backups), now=utcnow())
    app.emit(
        rows,
        lambda: app.table(
            ["schedule", "cron", "last fired", "state", "outcome", "next", "overdue"],
            [
                [
                    r["schedule"],
                    r["cron"],
                    r["last_slot"] or "never",
                    r["last_state"] or "",
                    r["last_outcome"] or "",
                    r["next_slot"],
                    "OVERDUE" if r["overdue"] else "",
                ]
                for r in rows
            ],
        ),
    )
