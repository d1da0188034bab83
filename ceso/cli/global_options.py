"""The global options (``--config``, ``--json``, ``--dry-run``, ``--progress``, ``--verbose``), declared once and
accepted anywhere on the command line, as govc does: ``ceso --json vm list`` and
``ceso vm list --json`` mean the same.

Each option is declared once in :data:`GLOBAL_OPTIONS`. The ``ceso`` group takes them
(:func:`root_options`), and :func:`attach` adds a fresh copy of each to every command and
group below it, once that command is loaded (:class:`ceso.cli.lazy.LazyGroup` calls it), so
``--help`` of every command lists them and ``ceso --help`` imports nothing more. None of them
reaches a command's parameters: their callbacks set the invocation's
:class:`~ceso.cli.application.Application`, which the ``ceso`` group's context holds from the
start. Below the ``ceso`` group only what the command line says counts: ``CESO_CONFIG`` and the
defaults were read once, by the group, and must not undo an earlier ``--config FILE``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from ceso.cli.application import Application

__all__ = ["GLOBAL_OPTIONS", "attach", "is_global", "root_options"]

#: (declarations, Application attribute, click attributes) of each global option.
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], str, dict[str, Any]], ...] = (
    (
        ("--config",),
        "config",
        {
            "type": click.Path(dir_okay=False),
            "envvar": "CESO_CONFIG",
            "help": "YAML config file (default: ~/.config/ceso/config.yaml, then /etc/ceso/config.yaml).",
        },
    ),
    (("--json",), "json_output", {"is_flag": True, "help": "Machine-readable JSON on stdout (errors too)."}),
    (("--dry-run",), "dry_run", {"is_flag": True, "help": "Show what would be done; change nothing."}),
    (
        ("--progress",),
        "progress",
        {
            "is_flag": True,
            "help": "Without a terminal too: progress of a job followed or a transfer on stderr every few seconds.",
        },
    ),
    (
        ("-v", "--verbose"),
        "verbose",
        {"is_flag": True, "help": "More logging; tracebacks for internal errors."},
    ),
)

_MARK = "ceso_global"  # set on each option instance made here


def _setter(attribute: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def set_option(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        source = ctx.get_parameter_source(param.name or "")
        at_root = ctx.parent is None
        if not at_root and source is not ParameterSource.COMMANDLINE:
            return  # the group already read the environment and the defaults
        if value is None or (value is False and not at_root):
            return
        app = ctx.ensure_object(Application)
        setattr(app, attribute, value)
        if attribute == "verbose" and value:
            import logging

            from ceso.log import configure_logging

            configure_logging(logging.DEBUG)

    return set_option


def _options(*, root: bool) -> list[click.Option]:
    made = []
    for decls, attribute, attrs in GLOBAL_OPTIONS:
        extra = attrs if root else {k: v for k, v in attrs.items() if k != "envvar"}
        option = click.Option(list(decls), expose_value=False, callback=_setter(attribute), **extra)
        setattr(option, _MARK, True)
        made.append(option)
    return made


def is_global(param: click.Parameter) -> bool:
    """True for a copy of a global option (the CLI reference lists them once, under ``ceso``)."""
    return bool(getattr(param, _MARK, False))


def root_options() -> list[click.Option]:
    """The global options of the ``ceso`` group itself (which reads ``CESO_CONFIG`` too)."""
    return _options(root=True)


def attach(command: click.Command) -> click.Command:
    """Give ``command`` (and, for a plain group, every command under it) the global options.

    Idempotent. A lazy group's commands get them when they are loaded.
    """
    if not any(is_global(p) for p in command.params):
        command.params.extend(_options(root=False))
    if isinstance(command, click.Group) and not hasattr(command, "lazy_commands"):
        for sub in command.commands.values():
            attach(sub)
    return command
