"""The command line every generated document shares: write the file, or ``--check`` that it is current."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def generate(output: Path, render: Callable[[], str], *, description: str, script: str) -> int:
    """Write ``render()`` to ``output``; with ``--check``, exit 1 (naming ``script``) if it differs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {output.name} is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = output.read_text(encoding="utf-8") if output.is_file() else ""
        if current != text:
            print(f"{output} is out of date: run .venv/bin/python {script}", file=sys.stderr)
            return 1
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0
