"""Values of job results and records as people read them: lists joined, mappings indented, never
Python's reprs (``--json`` keeps the values as they are)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["mapping_lines"]


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def mapping_lines(mapping: Mapping[str, Any], indent: str = "  ") -> Iterator[str]:
    """``key: value`` lines: a list of scalars on one line (comma-separated), a nested mapping or a
    list of mappings as indented lines below its key."""
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            yield f"{indent}{key}:" if value else f"{indent}{key}: -"
            yield from mapping_lines(value, indent + "  ")
        elif isinstance(value, list | tuple):
            if any(isinstance(item, Mapping) for item in value):
                yield f"{indent}{key}:"
                for item in value:
                    if isinstance(item, Mapping):
                        lines = list(mapping_lines(item, indent + "    "))
                        yield indent + "  - " + lines[0].lstrip() if lines else indent + "  - -"
                        yield from lines[1:]
                    else:
                        yield f"{indent}  - {_scalar(item)}"
            else:
                yield f"{indent}{key}: {', '.join(_scalar(v) for v in value) or '-'}"
        else:
            yield f"{indent}{key}: {_scalar(value)}"
