"""``ceso agent add``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app

MODES = ["read-only", "standard", "admin"]


@click.command()
@click.argument("name")
@click.option(
    "--mode", type=click.Choice(MODES), default="read-only", show_default=True, help="The agent's own mode."
)
@pass_app
def add(app: Application, name: str, mode: str) -> None:
    """Register agent NAME and print its token once (only its hash is kept).

    The agent sends the token as `Authorization: Bearer TOKEN` to cesod, or sets
    CESO_AGENT_TOKEN to drive the CLI. JSON: {"name", "mode", "token"}.
    """
    from ceso.security.agents import add_agent

    added, token = add_agent(app.runtime, name, mode)

    def human() -> None:
        click.echo(token)
        app.info(f"agent {added.name} added in mode {added.mode}; the token above is not shown again")

    app.emit({"name": added.name, "mode": added.mode, "token": token}, human)
