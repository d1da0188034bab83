"""``ceso host list``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command("list")
@pass_app
def list_(app: Application) -> None:
    """List registered hosts, with the live workers serving each (from their heartbeats)."""
    from sqlmodel import Session

    from ceso.hosts.registry import host_to_dict, list_hosts
    from ceso.jobs.liveness import workers_by_host

    with Session(app.runtime.engine) as session:
        hosts = [host_to_dict(h) for h in list_hosts(session)]
    live = workers_by_host(app.runtime, [h["name"] for h in hosts])
    for host in hosts:
        host["workers"] = live[host["name"]]
    app.emit(
        hosts,
        lambda: app.table(
            ["name", "url", "user", "product", "route", "checked", "workers"],
            [
                [
                    h["name"],
                    h["url"],
                    h["username"],
                    h["product"],
                    h["route"],
                    h["checked_at"],
                    _workers(h["workers"]),
                ]
                for h in hosts
            ],
        ),
    )


def _workers(workers: list[dict[str, object]] | None) -> str:
    if workers is None:
        return "?"
    return ", ".join(str(w["id"]) for w in workers) or "NONE"
