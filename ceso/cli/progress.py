"""Progress of a byte transfer in the CLI: a bar with bytes, rate and time left on a terminal, or
with ``--progress`` and no terminal one line on stderr every few seconds (and one at the end).

Drawn on stderr, so stdout (``--json`` included) stays what the command prints.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

import click

__all__ = ["ByteProgress", "human_bytes"]

LINE_EVERY_S = 5.0


def human_bytes(n: float) -> str:
    """``n`` bytes in binary units: ``512 B``, ``1.5 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class ByteProgress:
    """Call it with each count of bytes moved; use it as a context manager around the transfer."""

    def __init__(self, description: str, total: int | None, *, lines: bool) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self.terminal = sys.stderr.isatty()
        self.lines = lines and not self.terminal
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> ByteProgress:
        if self.terminal:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def __call__(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
        elif self.lines and time.monotonic() - self._last_line >= LINE_EVERY_S:
            self._line()

    def _line(self) -> None:
        self._last_line = now = time.monotonic()
        elapsed = max(now - self._started, 1e-6)
        rate = self.done / elapsed
        parts = [f"{self.description}: {human_bytes(self.done)}"]
        if self.total:
            parts[0] += f" of {human_bytes(self.total)} ({100 * self.done / self.total:.0f}%)"
        parts.append(f"{human_bytes(rate)}/s")
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"{(self.total - self.done) / rate:.0f} s left")
        click.echo(", ".join(parts), err=True)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)
        elif self.lines and kind is None:
            self._line()
