"""Asking the operator before a destructive change."""

from __future__ import annotations

import sys

import click

from ceso.cli.application import Application
from ceso.errors import InvalidInputError

__all__ = ["confirm_or_refuse", "stdin_is_terminal"]


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def confirm_or_refuse(app: Application, question: str, *, yes: bool, what: str) -> None:
    """Return when ``yes`` was given or the operator answers ``question`` with yes at a terminal.

    Raises InvalidInputError (exit 2, naming ``what``) when nobody can answer —
    stdin is not a terminal, or ``--json`` — so scripts and agents must pass
    ``--yes``; click's Abort (exit 1, "aborted") when the operator answers no.
    """
    if yes:
        return
    if app.json_output or not stdin_is_terminal():
        raise InvalidInputError(f"not going to {what} without confirmation (no terminal to ask): pass --yes")
    click.confirm(question, abort=True, err=True)
