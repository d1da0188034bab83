"""``ceso audit export``."""

from __future__ import annotations

import json

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option("--since", metavar="TIME|DURATION", help="Only records from then on.")
@click.option("--actor", help="Only this actor.")
@click.option("--vm", help="Only records about this VM.")
@pass_app
def export(app: Application, fmt: str, since: str | None, actor: str | None, vm: str | None) -> None:
    """Write records to stdout, one JSON object a line, in chain order, hashes included.

    An unfiltered export can be verified elsewhere: each line's hash is the
    SHA-256 of its canonical JSON (keys sorted, no spaces, without "hash"),
    and each prev_hash is the line before's hash.
    """
    from ceso.audit.query import iter_records, parse_since, record_to_dict

    when = parse_since(since) if since else None
    for row in iter_records(app.runtime.engine, since=when, actor=actor, vm=vm):
        click.echo(json.dumps(record_to_dict(row), sort_keys=True, separators=(",", ":"), default=str))
