"""A click group whose subcommands are imported only when one of them is used.

``ceso vm create`` then imports the ``vm`` commands and nothing of ``backup``,
``agent`` or ``worker``: start-up is most of a quick command's time, and of a
command handed to a local cesod (:mod:`ceso.cli.via_cesod`). Listing the
commands (``--help``, the CLI reference generator) imports them all. Every command a
LazyGroup hands out carries the global options (:mod:`ceso.cli.global_options`).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from ceso.cli.global_options import attach
from ceso.cli.name_completion import wire

__all__ = ["LazyGroup"]


class LazyGroup(click.Group):
    """``lazy_commands`` maps a subcommand's name to ``"module:attribute"``."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        self.path: tuple[
            str, ...
        ] = ()  # the words after `ceso` that name this group (set by the group that loads it)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module, _, attribute = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):  # pragma: no cover - a wrong table entry
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        command = super().get_command(ctx, cmd_name)
        if command is None:
            return None
        # Every command takes the global options wherever they stand on the line, and completes names.
        _wire_tree(command, (*self.path, cmd_name))
        return attach(command)


def _wire_tree(command: click.Command, path: tuple[str, ...]) -> None:
    """Wire ``command``'s name completion and, for a plain group, its subcommands' (a LazyGroup
    wires its own as it loads them, so it only learns its path)."""
    wire(command, path)
    if isinstance(command, LazyGroup):
        command.path = path
    elif isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _wire_tree(sub, (*path, name))
