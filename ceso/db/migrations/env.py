"""Alembic environment: the URL comes from ceso's settings (or the caller's config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import ceso.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from ceso.db.engine import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "ceso.db.migrate sets sqlalchemy.url"
connection = config.attributes.get("connection")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        compare_type=True,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    with make_engine(url).connect() as conn:
        _run(conn)
