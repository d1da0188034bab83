"""Directories and files only ceso's own user may read: the data directory and the SQLite database.

A data directory holds the SQLite database (jobs, audit trail, hosts) and the encrypted secret
file with its key, so ceso creates it 0700 and the database 0600, whatever the umask. Paths
that already exist are left as the operator made them.
"""

from __future__ import annotations

import os

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "make_private_dir", "make_private_file"]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """Create directory ``path`` (and missing parents) if it does not exist; the leaf it creates is 0700.

    Missing parents get the usual mode (they are not ceso's: ``~/.local/share``). Raises OSError.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    try:
        os.mkdir(path, PRIVATE_DIR_MODE)
    except FileExistsError:
        return  # another process made it first
    os.chmod(path, PRIVATE_DIR_MODE)  # the umask may have taken bits from mkdir's mode


def make_private_file(path: str | os.PathLike[str]) -> None:
    """Create empty file ``path`` with mode 0600 unless it exists (then it is left alone). Raises OSError.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's mode, so a database
    created through this stays private with its companions.
    """
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE_MODE
        )
    except FileExistsError:
        return
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
