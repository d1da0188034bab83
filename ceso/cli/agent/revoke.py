"""``ceso agent revoke``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("name")
@pass_app
def revoke(app: Application, name: str) -> None:
    """Revoke agent NAME: its token stops working now, and its queued jobs are refused when claimed."""
    from sqlmodel import Session

    from ceso.security.agents import agent_to_dict, get_agent, revoke_agent

    revoke_agent(app.runtime, name)
    with Session(app.runtime.engine) as session:
        row = agent_to_dict(session, get_agent(session, name))
    app.emit(row, lambda: click.echo(f"agent {name} revoked at {row['revoked_at']}"))
