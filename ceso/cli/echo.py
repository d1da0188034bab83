"""One line of text to stdout or stderr, as ``click.echo`` writes it, without importing click.

The CLI's fast path (:mod:`ceso.cli.via_cesod`) prints a forwarded command's outcome
without loading click (~25 ms of a process start). For text that holds no escape
character, on a stream whose encoding is not ASCII, ``click.echo`` writes the text
and a newline and flushes: exactly what :func:`echo` does. Anything else (an escape
character click would strip when the stream is not a terminal, a stream click re-wraps
because its encoding is ASCII or it has no error handler) goes through ``click.echo`` itself, so the two never differ.
"""

from __future__ import annotations

import codecs
import sys

__all__ = ["echo"]


def _ascii(encoding: str) -> bool:
    """click's test for a misconfigured stream, whose output it re-encodes."""
    try:
        return codecs.lookup(encoding).name == "ascii"
    except LookupError:
        return False


def echo(message: str, *, err: bool = False) -> None:
    """Write ``message`` and a newline to stdout (stderr with ``err``) and flush, as ``click.echo``."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return  # no stream (pythonw, a closed descriptor): click.echo writes nothing either
    plain = getattr(stream, "errors", None) is not None and not _ascii(
        getattr(stream, "encoding", None) or "ascii"
    )
    if "\x1b" in message or not plain:
        import click

        click.echo(message, err=err)
        return
    stream.write(message + "\n")
    stream.flush()
