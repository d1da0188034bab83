"""``ceso vm snapshot list``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command("list")
@click.argument("name")
@click.option("--host", help="The VM's host (optional when the name is unique across hosts).")
@pass_app
def list_(app: Application, name: str, host: str | None) -> None:
    """List VM NAME's snapshots as a tree (a direct read, not a job).

    JSON: a flat list, parents before children, of {id, name, description,
    created, state, quiesced, parent, parent_id, current}.
    """
    from ceso.vm.snapshot_requests import list_snapshots

    rows = list_snapshots(app.runtime, name=name, host=host)

    def human() -> None:
        if not rows:
            click.echo(f"VM {name} has no snapshots")
        depth: dict[int, int] = {}
        for r in rows:
            depth[r["id"]] = depth.get(r["parent_id"], -1) + 1 if r["parent_id"] is not None else 0
            mark = " (current)" if r["current"] else ""
            click.echo(
                f"{'  ' * depth[r['id']]}{r['name']}{mark}  {r['created']}  {r['state']}  {r['description']}"
            )

    app.emit(rows, human)
