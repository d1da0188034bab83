"""SQL errors in ceso's words: the database adapter's translation of SQLAlchemy's exceptions.

::

    sa.exc.OperationalError, InterfaceError  → OperationError  database_unreachable   exit 1
      (connection refused, lost or timed out)
    sa.exc.DataError                         → InvalidInputError value_out_of_range   exit 2
      (a value the column cannot hold: a net under the validators of :mod:`ceso.db.bounds`)

The message is the driver's first line, redacted: never the statement or its parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ceso.errors import CesoError, InvalidInputError, OperationError

__all__ = ["DATABASE_UNREACHABLE", "database_errors", "translate_db_error"]

DATABASE_UNREACHABLE = "database_unreachable"


def _first_line(exc: BaseException) -> str:
    from ceso.security.redact import redact_text

    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return redact_text(text[0] if text else type(cause).__name__)


def translate_db_error(exc: BaseException) -> CesoError | None:
    """The CesoError for SQLAlchemy error ``exc`` (chained to it), or None if ``exc`` is not one we map."""
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        error: CesoError = OperationError(
            f"database unreachable: {_first_line(exc)}", code=DATABASE_UNREACHABLE
        )
    elif isinstance(exc, sa.exc.DataError):
        error = InvalidInputError(
            f"a value does not fit the database: {_first_line(exc)}", code="value_out_of_range"
        )
    else:
        return None
    error.__cause__ = exc
    return error


@contextmanager
def database_errors() -> Iterator[None]:
    """Raise the translated CesoError for a mapped SQLAlchemy error raised inside the block."""
    try:
        yield
    except CesoError:
        raise
    except Exception as exc:
        translated = translate_db_error(exc)
        if translated is None:
            raise
        raise translated from exc
