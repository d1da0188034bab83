"""Alembic owns the schema: the migrations build exactly the models' tables, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import ceso.db.models  # noqa: F401
from ceso.db.engine import make_engine
from ceso.db.migrate import _MIGRATIONS, HEAD_REVISIONS, current_revisions, ensure_schema, upgrade


def test_head_revision_constant_matches_alembic() -> None:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    assert frozenset(ScriptDirectory.from_config(cfg).get_heads()) == HEAD_REVISIONS


def test_migrations_match_models(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    assert current_revisions(engine) == HEAD_REVISIONS
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
        )
    engine.dispose()
    assert diff == []


def test_empty_sqlite_is_upgraded_on_first_use(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/new/ceso.db")
    assert current_revisions(engine) == frozenset()
    ensure_schema(engine)
    assert current_revisions(engine) == HEAD_REVISIONS
