"""Files a user names (``--config``, ``--userdata``, ``--vendordata``, ``--ssh-key``, key and identity
files): regular files under a size cap, read without ever blocking.

A FIFO, a device, a socket or a directory is refused at once (a FIFO would block the
command until someone wrote to it, ``/dev/zero`` would never end); so is an empty path.
The type is checked before the file is opened (opening a device can have effects) and again
on the opened descriptor (the path may have been swapped in between); the open itself does
not block (``O_NONBLOCK``). Light on purpose (``os`` and ``stat`` only): the CLI reads these
files before it decides whether to load anything else.
"""

from __future__ import annotations

import os
import stat

from ceso.errors import InvalidInputError

__all__ = ["KIB", "MIB", "read_text_file", "require_regular_file"]

KIB = 1024
MIB = 1024 * KIB


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def _size(value: int) -> str:
    return f"{value // MIB} MiB" if value % MIB == 0 else f"{value // KIB} KiB"


def _refuse_unless_regular(mode: int, shown: str, what: str) -> None:
    kind = _kind(mode)
    if kind is not None:
        raise InvalidInputError(f"{what} {shown} is {kind}; give a regular file")


def require_regular_file(path: str, what: str) -> str:
    """``path`` with ``~`` expanded if it names a regular file (symlinks followed); InvalidInputError if
    the path is empty, missing or names anything else. For files read later by other code."""
    if not path.strip():
        raise InvalidInputError(f"{what}: the path is empty")
    expanded = os.path.expanduser(path)
    try:
        mode = os.stat(expanded).st_mode
    except FileNotFoundError:
        raise InvalidInputError(f"{what} {expanded} does not exist") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {expanded}: {exc.strerror or exc}") from None
    _refuse_unless_regular(mode, repr(path), what)
    return expanded


def read_text_file(path: str | os.PathLike[str], what: str, *, max_bytes: int) -> str:
    """The UTF-8 text of regular file ``path`` (``~`` expanded), at most ``max_bytes`` bytes.

    ``what`` names the option in messages (``--userdata file``). Raises InvalidInputError
    for an empty path, a missing or unreadable file, anything but a regular file, a file
    over ``max_bytes`` and text that is not UTF-8. Never blocks on the file.
    """
    raw = os.fspath(path)
    if not raw.strip():
        raise InvalidInputError(f"{what}: the path is empty")
    expanded = os.path.expanduser(raw)
    shown = repr(raw)
    try:
        _refuse_unless_regular(os.stat(expanded).st_mode, shown, what)
        fd = os.open(expanded, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        _refuse_unless_regular(info.st_mode, shown, what)
        if info.st_size > max_bytes:
            raise InvalidInputError(f"{what} {shown} is larger than {_size(max_bytes)}")
        chunks: list[bytes] = []
        left = max_bytes + 1  # one byte more tells a file that grew past the cap
        while left > 0:
            chunk = os.read(fd, min(left, 64 * KIB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise InvalidInputError(f"{what} {shown} is larger than {_size(max_bytes)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{what} {shown} is not UTF-8 text") from None
