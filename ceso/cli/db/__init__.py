"""``ceso db``: the database schema."""

from __future__ import annotations

import click

from ceso.cli.db.upgrade import upgrade


@click.group()
def db() -> None:
    """Manage the database schema (Alembic migrations)."""


db.add_command(upgrade)
