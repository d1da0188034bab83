"""Keep a worker's memory flat while backups stream: cap glibc's malloc arenas.

glibc gives a thread that allocates while others do its own malloc arena (up to
eight per core), and memory freed there stays in the process. A backup runs
several threads at once — the reader, the writer, zstd's workers — so each
job could leave its own arenas behind and raise the worker's peak RSS; two
arenas take that back out at no cost in speed (docs/benchmarks.md, backups). An operator's own ``MALLOC_ARENA_MAX`` wins; elsewhere than glibc this
does nothing.

After each job a prefork child also hands the memory its threads freed back to
the system (``malloc_trim``): otherwise what one job left free in the arenas
stays in the child's RSS, and the next job's peak starts from there
(docs/benchmarks.md, backups).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

__all__ = ["cap_malloc_arenas", "release_free_memory"]

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc's mallopt() parameter M_ARENA_MAX
DEFAULT_ARENAS = 2


@functools.cache  # find_library may run ldconfig: once per process
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def cap_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Limit glibc's malloc arenas for this process and its forked children; True if applied.

    Call before threads start. A ``MALLOC_ARENA_MAX`` in the environment (read
    by glibc at start) is left as it is.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)  # not glibc (musl has no mallopt)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, applied)
    return applied


def release_free_memory() -> bool:
    """Return the free memory of every malloc arena to the system (glibc's ``malloc_trim``);
    True if some was. Costs about a millisecond; elsewhere than glibc it does nothing."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))
