"""The bounds SQL columns put on input, read from the models: one declaration per bound.

A value that does not fit its column is bad input (exit 2), found before anything is
written, not a ``DataError`` from PostgreSQL that echoes the statement (SQLite would even
store it). Validators at the edges call :func:`check_text` and :func:`check_integer` with
the model column the value is headed for, so the message names the option the user typed;
:func:`install_flush_check` adds a net under every ORM write for what no validator caught.
The audit trail instead fits an over-long value to its column (:func:`fit_text`): a record
of a refused request must still be written.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from ceso.errors import InvalidInputError

__all__ = [
    "check_integer",
    "check_text",
    "column",
    "fit_text",
    "install_flush_check",
    "integer_range",
    "text_limit",
]

# The integer types SQLAlchemy maps to fixed-width columns, narrowest first (subclasses first).
_INTEGER_BITS: tuple[tuple[type[sa.types.TypeEngine[Any]], int], ...] = (
    (sa.SmallInteger, 16),
    (sa.BigInteger, 64),
    (sa.Integer, 32),
)


def column(model: Any, field: str) -> sa.Column[Any]:
    """The table column behind ``model.field`` (``Host``, ``"username"``)."""
    table: sa.Table = model.__table__
    return table.c[field]


@functools.cache
def _text_limit(model: Any, field: str) -> int | None:
    length = getattr(column(model, field).type, "length", None)
    return int(length) if length else None


def text_limit(model: Any, field: str) -> int:
    """The most characters ``model.field`` holds; ValueError if it is not a bounded string column."""
    limit = _text_limit(model, field)
    if limit is None:
        raise ValueError(f"{model.__name__}.{field} is not a bounded string column")
    return limit


@functools.cache
def integer_range(model: Any, field: str) -> tuple[int, int]:
    """The smallest and largest value integer column ``model.field`` holds (signed, as on PostgreSQL)."""
    kind = column(model, field).type
    for base, bits in _INTEGER_BITS:
        if isinstance(kind, base):
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    raise ValueError(f"{model.__name__}.{field} is not an integer column")


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 40 else f"{value[:20]!r}…"


def check_text(value: str, model: Any, field: str, *, what: str) -> str:
    """``value`` if it fits ``model.field``; InvalidInputError naming ``what`` (an option, say) if not."""
    limit = text_limit(model, field)
    if len(value) > limit:
        raise InvalidInputError(f"{what} {_shown(value)} is {len(value)} characters; at most {limit}")
    return value


def check_integer(value: int, model: Any, field: str, *, what: str) -> int:
    """``value`` if integer column ``model.field`` holds it; InvalidInputError naming ``what`` if not."""
    low, high = integer_range(model, field)
    if not low <= value <= high:
        raise InvalidInputError(f"{what} {value} is out of range ({low} to {high})")
    return value


def fit_text(value: str | None, model: Any, field: str) -> str | None:
    """``value`` cut to what ``model.field`` holds, ending in ``…`` when cut (for records that must be kept)."""
    if value is None:
        return None
    limit = _text_limit(model, field)
    if limit is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def _check_instance(obj: Any) -> None:
    table = getattr(type(obj), "__table__", None)
    if table is None:
        return
    model: Any = type(obj)
    for col in table.columns:
        value = getattr(obj, col.key, None)
        if isinstance(value, str) and _text_limit(model, col.key) is not None:
            check_text(value, model, col.key, what=f"{table.name}.{col.key}")
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                integer_range(model, col.key)
            except ValueError:
                continue
            check_integer(value, model, col.key, what=f"{table.name}.{col.key}")


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty):
        _check_instance(obj)


@functools.cache
def install_flush_check() -> None:
    """Check every new or changed ORM row against its columns before it is flushed (once per process).

    A value that does not fit raises InvalidInputError from the flush: nothing of it is written.
    """
    event.listen(Session, "before_flush", _before_flush)
