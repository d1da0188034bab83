"""Where an image comes from: a local file or an ``https://`` URL, read as a stream.

:func:`check_source` is the form check every caller makes (the CLI, cesod, the worker);
:func:`open_source` opens it for the worker that imports it. A URL is read as it downloads
(never whole in memory, never staged on disk), resumed where the server allows ranges
(:mod:`ceso.images.download`), with the system's CA certificates; a local
path must be absolute: the job reads it on the worker's machine, not the caller's.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit, urlunsplit

from ceso.errors import InvalidInputError, NotFoundError

__all__ = ["KINDS", "CountingReader", "Opened", "check_source", "open_source", "sibling"]

#: What a source's name ends with, and what it is.
KINDS = {".ova": "ova", ".ovf": "ovf", ".vmdk": "vmdk"}
_TIMEOUT_S = 60.0


def check_source(source: str) -> str:
    """``source`` if it is an absolute path or an https URL ending in .ova, .ovf or .vmdk;
    InvalidInputError (naming ``--from``) otherwise. Returns it unchanged."""
    if any(ord(c) < 32 for c in source) or len(source) > 2048:
        raise InvalidInputError("--from must be one line of at most 2048 characters")
    parts = urlsplit(source)
    if parts.scheme and parts.scheme != "https":
        raise InvalidInputError(f"--from takes a local path or an https:// URL, not {parts.scheme}://")
    if parts.scheme and (not parts.hostname or parts.username or parts.password):
        raise InvalidInputError("--from URL needs a host and no user name or password in it")
    if parts.scheme and (parts.query or parts.fragment):
        # A query often carries a signature; the source is stored with the job and shown by `job status`.
        raise InvalidInputError("--from URL must have no query or fragment (it is stored with the job)")
    if not parts.scheme and not os.path.isabs(source):
        raise InvalidInputError(f"--from {source!r} must be an absolute path (the worker reads it)")
    path = parts.path if parts.scheme else source
    if kind_of(path) is None:
        raise InvalidInputError(f"--from must name an .ova, .ovf or .vmdk file, not {source!r}")
    return source


def kind_of(path: str) -> str | None:
    """``ova``, ``ovf`` or ``vmdk`` by the name's ending (any case); None for anything else."""
    lower = path.lower()
    return next((kind for end, kind in KINDS.items() if lower.endswith(end)), None)


def sibling(source: str, name: str) -> str:
    """The file ``name`` beside ``source`` (an OVF's disks and manifest): a path or a URL."""
    parts = urlsplit(source)
    if parts.scheme:
        base = parts.path.rsplit("/", 1)[0]
        return urlunsplit((parts.scheme, parts.netloc, f"{base}/{quote(name)}", "", ""))
    return os.path.join(os.path.dirname(source), name)


class CountingReader:
    """A reader that counts (and optionally hashes) what passes, and reports it to ``progress``."""

    def __init__(
        self,
        raw: Any,
        *,
        digest: str | None = None,
        progress: Callable[[int], None] | None = None,
        keep_head: int = 0,
    ) -> None:
        self.raw = raw
        self.count = 0
        self.keep_head = keep_head
        self.head = bytearray()  # the first keep_head bytes that passed
        self.hash = hashlib.new(digest) if digest else None
        self.progress = progress

    def read(self, n: int = -1, /) -> bytes:
        data: bytes = self.raw.read(n)
        if len(self.head) < self.keep_head:
            self.head += data[: self.keep_head - len(self.head)]
        self.count += len(data)
        if self.hash is not None:
            self.hash.update(data)
        if self.progress is not None and data:
            self.progress(len(data))
        return data

    def drain(self) -> None:
        """Read to the end (so the digest covers the whole stream)."""
        while self.read(1 << 20):
            pass


@dataclass
class Opened:
    """An open source: its stream and its size, if known."""

    stream: BinaryIO  # a file, or a Download (read and close)
    size: int | None

    def close(self) -> None:
        self.stream.close()


def open_source(source: str, *, timeout: float = _TIMEOUT_S) -> Opened:
    """Open ``source`` for reading. NotFoundError if it is not there; OperationError if a URL
    answers otherwise; InvalidInputError for a local path that is not a regular file."""
    if urlsplit(source).scheme == "https":
        from ceso.images.download import Download  # not imported by the CLI, which checks sources only

        download = Download(source, timeout=timeout)
        return Opened(download, download.size)  # type: ignore[arg-type]
    try:
        stream = open(source, "rb")  # noqa: SIM115  # closed by the caller (Opened.close)
    except FileNotFoundError:
        raise NotFoundError(f"{source} does not exist on the worker's machine") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {source}: {exc.strerror}") from None
    st = os.fstat(stream.fileno())
    if not stat.S_ISREG(st.st_mode):
        stream.close()
        raise InvalidInputError(f"{source} is not a regular file")
    return Opened(stream, st.st_size)
