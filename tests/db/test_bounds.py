"""The bounds SQL columns put on input (ceso.db.bounds), checked on real SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from ceso.db.bounds import check_integer, fit_text, integer_range, text_limit
from ceso.db.models import Host
from ceso.db.security_models import AuditRecord
from ceso.errors import InvalidInputError


def test_bounds_are_read_from_the_columns() -> None:
    assert text_limit(Host, "username") == Host.__table__.c["username"].type.length  # type: ignore[attr-defined]
    assert integer_range(AuditRecord, "seq") == (-(2**31), 2**31 - 1)
    with pytest.raises(InvalidInputError, match="out of range"):
        check_integer(2**31, AuditRecord, "seq", what="audit record ID")
    assert fit_text("h" * 70, AuditRecord, "host") == "h" * 63 + "…"
    assert fit_text("short", AuditRecord, "host") == "short"


def test_every_orm_write_is_checked_before_it_is_flushed(database_url: str) -> None:
    from ceso.db.engine import make_engine
    from ceso.db.migrate import ensure_schema

    engine = make_engine(database_url)
    ensure_schema(engine)
    try:
        with Session(engine) as session:
            session.add(Host(name="h1", url="https://h1", username="u" * 129))
            with pytest.raises(InvalidInputError, match=r"hosts\.username .* at most 128"):
                session.commit()
        with engine.connect() as conn:  # nothing was written (SQLite would have stored it)
            assert conn.execute(sa.text("SELECT count(*) FROM hosts")).scalar_one() == 0
    finally:
        engine.dispose()
