"""``ceso audit``: the append-only, hash-chained audit trail."""

from __future__ import annotations

import click

from ceso.cli.audit.export import export
from ceso.cli.audit.list import list_
from ceso.cli.audit.show import show
from ceso.cli.audit.verify import verify


@click.group()
def audit() -> None:
    """List, show, verify and export audit records (every change and every refusal)."""


for command in (list_, show, verify, export):
    audit.add_command(command)
