"""Keep a worker's memory flat while backups stream: cap glibc's malloc arenas.

glibc gives a thread that allocates while others do its own malloc arena (up to
eight per core), and memory freed there stays in the process. A backup runs
several threads at once — the reader, the writer, zstd's workers — so each
job could leave its own arenas behind: measured, a worker's peak RSS per 4 GiB
backup went from ~145 to ~165 MiB once the writer thread was added, and back
under 155 MiB with two arenas (docs/benchmarks.md, backups), at no cost in
speed. An operator's own ``MALLOC_ARENA_MAX`` wins; elsewhere than glibc this
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

__all__ = ["cap_malloc_arenas"]

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from <malloc.h>
DEFAULT_ARENAS = 2


def cap_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Limit glibc's malloc arenas for this process and its forked children; True if applied.

    Call before threads start. A ``MALLOC_ARENA_MAX`` in the environment (read
    by glibc at start) is left as it is.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, applied)
    return applied
