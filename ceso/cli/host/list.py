"""``ceso host list``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command("list")
@pass_app
def list_(app: Application) -> None:
    """List registered hosts."""
    from sqlmodel import Session

    from ceso.hosts.registry import host_to_dict, list_hosts

    with Session(app.runtime.engine) as session:
        hosts = [host_to_dict(h) for h in list_hosts(session)]
    app.emit(
        hosts,
        lambda: app.table(
            ["name", "url", "user", "product", "route", "checked"],
            [[h["name"], h["url"], h["username"], h["product"], h["route"], h["checked_at"]] for h in hosts],
        ),
    )
