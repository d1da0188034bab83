"""``ceso audit show``."""

from __future__ import annotations

import json

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("seq", metavar="ID", type=int)
@pass_app
def show(app: Application, seq: int) -> None:
    """Show audit record ID in full: who, in which mode, from where, what, and its hashes."""
    from sqlmodel import Session

    from ceso.audit.query import get_record, record_to_dict

    with Session(app.runtime.engine) as session:
        row = record_to_dict(get_record(session, seq))

    def human() -> None:
        for key, value in row.items():
            if key != "details":
                click.echo(f"{key:>12}: {value}")
        click.echo(f"{'details':>12}: {json.dumps(row['details'], indent=2, sort_keys=True, default=str)}")

    app.emit(row, human)
