"""Click options declared from an operation spec (:mod:`ceso.specs`): the help text, the
default and the kind of option (flag, repeatable, integer) come from the spec's field, so
the CLI cannot describe an option differently from cesod's schema.

The option's name is the field's (``no_power_on`` → ``--no-power-on``) and so is the
parameter click passes, so a command's click params map onto its spec one to one; a
command only adds what is the CLI's own (a metavar, a file the CLI reads, a type that
converts as the operator types).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import click
from pydantic_core import PydanticUndefined

from ceso.specs import Spec

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["spec_argument", "spec_option", "spec_options"]


def _base(annotation: Any) -> Any:
    """``int`` of ``int | None``; ``list`` of ``list[str]``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _base(inner)
    return origin or annotation


def spec_option(
    spec: type[Spec], field: str, *, decl: str | None = None, help_suffix: str = "", **attrs: Any
) -> Callable[[F], F]:
    """``--FIELD`` (or ``decl``, such as ``--hot/--cold``) for ``spec.FIELD``: its description as
    help (plus ``help_suffix``), its default."""
    info = spec.model_fields[field]
    kind = _base(info.annotation)
    attrs.setdefault("help", spec.describe(field) + help_suffix)
    if kind is bool:
        attrs.setdefault("is_flag", True)
    elif kind is list:
        attrs.setdefault("multiple", True)
    elif kind in (int, float):
        attrs.setdefault("type", kind)
    if info.is_required():
        attrs.setdefault("required", True)
    elif info.default not in (None, False, "", [], PydanticUndefined):
        attrs.setdefault("default", info.default)
        attrs.setdefault("show_default", True)
    return click.option(decl or "--" + (info.alias or field).replace("_", "-"), field, **attrs)


def spec_argument(spec: type[Spec], field: str, **attrs: Any) -> Callable[[F], F]:
    """The positional argument FIELD of ``spec`` (click arguments carry no help)."""
    assert field in spec.model_fields, f"{spec.__name__} has no field {field}"
    return click.argument(field, **attrs)


def spec_options(spec: type[Spec], *fields: str, **attrs: dict[str, Any]) -> Callable[[F], F]:
    """The options of ``fields`` in this order; ``attrs[field]`` adds click attributes to one."""
    assert set(attrs) <= set(fields), f"attributes for options not listed: {set(attrs) - set(fields)}"

    def decorate(fn: F) -> F:
        for field in reversed(fields):
            fn = spec_option(spec, field, **attrs.get(field, {}))(fn)
        return fn

    return decorate
