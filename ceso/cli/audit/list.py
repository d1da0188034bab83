"""``ceso audit list``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command("list")
@click.option("--actor", help="Only this actor (agent:NAME, operator:NAME, or just NAME).")
@click.option("--vm", help="Only records about this VM.")
@click.option(
    "--since", metavar="TIME|DURATION", help="Only records from then on: 2026-11-26T10:00, 2h, 30m."
)
@click.option("--event", help="Only this event, e.g. job.refused, promotion.approved.")
@click.option("--job", "job_id", metavar="ID", help="Only records of this job.")
@click.option("--limit", type=click.IntRange(1, 100000), default=100, show_default=True)
@pass_app
def list_(
    app: Application,
    actor: str | None,
    vm: str | None,
    since: str | None,
    event: str | None,
    job_id: str | None,
    limit: int,
) -> None:
    """List the newest audit records (oldest of them first)."""
    from sqlmodel import Session

    from ceso.audit.query import list_records, parse_since, record_to_dict

    when = parse_since(since) if since else None
    with Session(app.runtime.engine) as session:
        rows = [
            record_to_dict(r)
            for r in list_records(
                session, actor=actor, vm=vm, since=when, event=event, job_id=job_id, limit=limit
            )
        ]
    app.emit(
        rows,
        lambda: app.table(
            ["seq", "at", "event", "outcome", "actor", "mode", "source", "operation", "host", "vm"],
            [
                [
                    r["seq"],
                    r["at"],
                    r["event"],
                    r["outcome"],
                    r["actor"],
                    r["mode"],
                    r["source"],
                    r["operation"],
                    r["host"],
                    r["vm"],
                ]
                for r in rows
            ],
        ),
    )
