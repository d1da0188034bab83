"""Click options of an operation spec (:mod:`ceso.specs`), named by reference (``"module:Class"``).

An option is named like its field (``no_power_on`` → ``--no-power-on``, and click passes it
as ``no_power_on``), so a command's click params map onto its spec one to one. The command
declares only what click needs to parse (a flag, a repeatable option, a type that converts
as the operator types); what the option *means* stays in the spec:

* its help text is the field's description, read when help is shown;
* its default is the field's: the CLI passes nothing for an option not given, the spec fills
  it in, and help shows it.

The spec class is imported only to show help or to run the command here: a command handed
to a local cesod (:mod:`ceso.cli.via_cesod`) never loads pydantic. A test walks every command
and holds each option's kind, requirement, help and default to its field.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ceso.specs import Spec

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["SpecOption", "load_spec", "spec_argument", "spec_option", "spec_options"]

_NO_DEFAULT_SHOWN: tuple[Any, ...] = (None, False, "", [])


def load_spec(ref: str) -> type[Spec]:
    """The spec class ``ref`` names (``"ceso.vm.specs:CreateVm"``)."""
    module, _, name = ref.partition(":")
    spec: type[Spec] = getattr(importlib.import_module(module), name)
    return spec


class SpecOption(click.Option):
    """An option of spec field ``field`` of ``spec`` (a reference): help and default are the field's."""

    def __init__(self, *args: Any, spec: str, field: str, help_suffix: str = "", **attrs: Any) -> None:
        super().__init__(*args, **attrs)
        self.spec, self.field, self.help_suffix = spec, field, help_suffix

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if self.help is None:
            spec = load_spec(self.spec)
            default = spec.model_fields[self.field].default
            shown = "" if default in _NO_DEFAULT_SHOWN or self.required else f"  [default: {default}]"
            self.help = spec.describe(self.field) + self.help_suffix + shown
        return super().get_help_record(ctx)


def spec_option(spec: str, field: str, *, decl: str | None = None, **attrs: Any) -> Callable[[F], F]:
    """``--FIELD`` (or ``decl``, such as ``--hot/--cold``) for field ``field`` of spec ``spec``;
    ``attrs`` are what click needs to parse it (``is_flag``, ``multiple``, ``type``, ``required``)."""
    name = decl or "--" + field.rstrip("_").replace("_", "-")
    return click.option(name, field, cls=SpecOption, spec=spec, field=field, **attrs)


def spec_argument(field: str, **attrs: Any) -> Callable[[F], F]:
    """The positional argument FIELD of a spec (click arguments carry no help)."""
    return click.argument(field, **attrs)


def spec_options(spec: str, **fields: dict[str, Any]) -> Callable[[F], F]:
    """One :func:`spec_option` per keyword, in this order: ``name={"is_flag": True}``."""

    def decorate(fn: F) -> F:
        for field, attrs in reversed(fields.items()):
            fn = spec_option(spec, field, **attrs)(fn)
        return fn

    return decorate
