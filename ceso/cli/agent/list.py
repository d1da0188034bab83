"""``ceso agent list`` and ``ceso agent whoami``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command("list")
@click.option("--active", is_flag=True, help="Leave out revoked agents.")
@pass_app
def list_(app: Application, active: bool) -> None:
    """List agents with their own and their current (promoted) mode."""
    from sqlmodel import Session

    from ceso.security.agents import agent_to_dict, list_agents

    with Session(app.runtime.engine) as session:
        rows = [agent_to_dict(session, a) for a in list_agents(session, include_revoked=not active)]
    app.emit(
        rows,
        lambda: app.table(
            ["name", "mode", "effective", "until", "created", "revoked"],
            [
                [
                    r["name"],
                    r["mode"],
                    r["effective_mode"],
                    r["promotion_expires_at"],
                    r["created_at"],
                    r["revoked_at"],
                ]
                for r in rows
            ],
        ),
    )


@click.command()
@pass_app
def whoami(app: Application) -> None:
    """Show who this CLI acts as (CESO_AGENT_TOKEN's agent or the operator) and its mode now."""
    me = app.principal.to_dict()
    app.emit(me, lambda: click.echo(f"{me['actor']}: mode {me['mode']} (own mode {me['base_mode']})"))
