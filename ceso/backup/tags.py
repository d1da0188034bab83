"""ceso's own VM tags: names for groups of VMs, defined by glob patterns in ``backups.tags``.

Standalone ESXi has no tagging service (vSphere tags live in vCenter), so a tag
is declared in the configuration, beside the retention policies and schedules
that use it::

    backups:
      tags:
        prod: [web-*, db-1]
        db: ["db-*"]

A VM carries every tag one of whose patterns matches its name. Patterns are
shell globs (``*``, ``?``, ``[abc]``, ``[!abc]``), matched case-sensitively
against the whole VM name, as ESXi names are case-sensitive. VM names can
never contain ``* ? [ ]`` (see :mod:`ceso.vm.names`), so a pattern without them
names exactly one VM.

Pure functions and light imports only: this module is loaded with the settings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

__all__ = ["TAG_NAME_RE", "check_pattern", "check_tag_name", "tags_of", "vms_with_tag"]

#: A tag name: a letter or digit, then letters, digits, ``_``, ``.`` or ``-`` (64 at most).
TAG_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# Characters a VM name can never hold (ceso.vm.names), minus the glob metacharacters.
_NEVER_IN_NAMES = set('/\\%"<>|:')
_MAX_PATTERN = 200


def check_tag_name(name: str) -> str:
    """``name`` if it is a valid tag name; ValueError saying what a tag name may hold otherwise."""
    if not TAG_NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid tag name {name!r}: use letters, digits, '_', '.', '-' "
            "(starting with a letter or digit, at most 64 characters)"
        )
    return name


def _class_end(pattern: str, start: int) -> int:
    """Index just past the ``]`` closing the class opened at ``start``, as fnmatch reads it; -1 if none."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "!":
        i += 1
    if i < len(pattern) and pattern[i] == "]":  # a leading ']' is a member, not the end
        i += 1
    end = pattern.find("]", i)
    return -1 if end < 0 else end + 1


def check_pattern(pattern: str) -> str:
    """``pattern`` if it is a glob that can match VM names; ValueError naming the problem otherwise.

    fnmatch itself accepts anything (an unclosed ``[`` silently becomes a literal),
    so the mistakes an operator makes are refused here: an empty pattern, spaces
    around it, an unclosed ``[``, an empty class ``[]``, and characters no VM name
    can hold (the pattern would never match).
    """
    if not pattern:
        raise ValueError("empty VM name pattern")
    if len(pattern) > _MAX_PATTERN:
        raise ValueError(f"VM name pattern is longer than {_MAX_PATTERN} characters")
    if pattern != pattern.strip():
        raise ValueError(f"VM name pattern {pattern!r} starts or ends with a space")
    if any(unicodedata.category(c)[0] == "C" for c in pattern):
        raise ValueError(f"VM name pattern {pattern!r} contains control characters")
    bad = sorted(set(pattern) & _NEVER_IN_NAMES)
    if bad:
        raise ValueError(f"VM name pattern {pattern!r} contains {' '.join(bad)}, which no VM name can hold")
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            end = _class_end(pattern, i)
            if end < 0:
                raise ValueError(f"VM name pattern {pattern!r}: '[' at position {i} is never closed")
            i = end
        elif pattern[i] == "]":
            raise ValueError(f"VM name pattern {pattern!r}: ']' at position {i} closes no '['")
        else:
            i += 1
    return pattern


def tags_of(vm: str, tags: Mapping[str, Iterable[str]]) -> list[str]:
    """The names of the tags whose patterns match ``vm``, sorted."""
    return sorted(name for name, patterns in tags.items() if any(fnmatchcase(vm, p) for p in patterns))


def vms_with_tag(names: Iterable[str], patterns: Iterable[str]) -> list[str]:
    """The VM names among ``names`` that a tag with ``patterns`` matches, sorted and unique."""
    pats = list(patterns)
    return sorted({n for n in names if any(fnmatchcase(n, p) for p in pats)})
