"""Compression of backup streams: zstd (multi-threaded), gzip, or none.

Compression is push-based (:class:`Compressor`: bytes in, bytes out, bounded by
the input); decompression is pull-based (:func:`decompressing_reader`), because
a small compressed chunk of zeros can expand to gigabytes and the reader must
hand them out in bounded pieces to keep memory flat.
"""

from __future__ import annotations

import os
import zlib
from typing import IO, Protocol, cast

from ceso.errors import InvalidInputError, OperationError

__all__ = [
    "COMPRESSIONS",
    "Compressor",
    "Reader",
    "decompressing_reader",
    "make_compressor",
    "suffix_for",
]

COMPRESSIONS = ("zstd", "gzip", "none")
DEFAULT_LEVELS = {"zstd": 3, "gzip": 6, "none": 0}
LEVEL_RANGES = {"zstd": (1, 22), "gzip": (1, 9), "none": (0, 0)}
ZSTD_JOB_SIZE = 512 << 10


class Reader(Protocol):
    """Anything with ``read(n)``: returns at most ``n`` bytes, ``b""`` at the end."""

    def read(self, n: int = -1, /) -> bytes: ...


class Compressor(Protocol):
    def compress(self, data: bytes | memoryview) -> bytes: ...
    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes | memoryview) -> bytes:
        return bytes(data)

    def flush(self) -> bytes:
        return b""


def check_level(compression: str, level: int | None) -> int:
    """The effective level; InvalidInputError for an unknown compression or a level out of range."""
    if compression not in COMPRESSIONS:
        raise InvalidInputError(f"compression must be one of {', '.join(COMPRESSIONS)}, not {compression!r}")
    if level is None:
        return DEFAULT_LEVELS[compression]
    low, high = LEVEL_RANGES[compression]
    if not low <= level <= high:
        raise InvalidInputError(f"--level {level} is outside {low}-{high} for {compression}")
    return level


def make_compressor(compression: str, level: int | None = None, *, threads: int = -1) -> Compressor:
    """A compressor for ``compression`` (zstd ``threads``: -1 = one per core, 0 = in the caller)."""
    level = check_level(compression, level)
    if compression == "zstd":
        import zstandard

        if threads == 0:
            return zstandard.ZstdCompressor(level=level).compressobj()
        workers = (os.cpu_count() or 1) if threads < 0 else threads
        # Small jobs: zstd's default job size (several windows) makes each worker hold buffers many
        # times larger for about the same speed and ratio (docs/benchmarks.md, backups).
        params = zstandard.ZstdCompressionParameters.from_level(
            level, threads=workers, job_size=ZSTD_JOB_SIZE
        )
        return zstandard.ZstdCompressor(compression_params=params).compressobj()
    if compression == "gzip":
        # wbits=31: a real gzip member, so `gzip -d` reads a stored file too.
        return zlib.compressobj(level, zlib.DEFLATED, 31)
    return _Identity()


def suffix_for(compression: str) -> str:
    """The file-name suffix of a stored file (``.zst``, ``.gz`` or nothing)."""
    return {"zstd": ".zst", "gzip": ".gz", "none": ""}[compression]


class _GzipReader:
    """Bounded-output gzip decompression (``zlib`` keeps the rest in ``unconsumed_tail``)."""

    def __init__(self, source: Reader, read_size: int) -> None:
        self._source = source
        self._read_size = read_size
        self._z = zlib.decompressobj(31)
        self._pending = b""

    def read(self, n: int = -1, /) -> bytes:
        limit = n if n > 0 else 1 << 20
        while True:
            if not self._pending and not self._z.eof:
                self._pending = self._source.read(self._read_size)
                if not self._pending:
                    raise OperationError("gzip stream is truncated", code="backup_corrupt")
            try:
                out = self._z.decompress(self._pending, limit)
            except zlib.error as exc:
                raise OperationError(f"gzip stream is damaged: {exc}", code="backup_corrupt") from exc
            self._pending = self._z.unconsumed_tail
            if out:
                return out
            if self._z.eof:
                if self._z.unused_data or self._source.read(1):
                    raise OperationError("data after the end of the gzip stream", code="backup_corrupt")
                return b""


class _ZstdReader:
    def __init__(self, source: Reader, read_size: int) -> None:
        import zstandard

        self._zstd = zstandard
        # zstandard only needs read(); its stub asks for IO[bytes].
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast("IO[bytes]", source), read_size=read_size, read_across_frames=False
        )
        self._done = False

    def read(self, n: int = -1, /) -> bytes:
        if self._done:
            return b""
        try:
            out = self._reader.read(n if n > 0 else 1 << 20)
        except self._zstd.ZstdError as exc:
            raise OperationError(f"zstd stream is damaged: {exc}", code="backup_corrupt") from exc
        if not out:
            self._done = True
        return out


def decompressing_reader(compression: str, source: Reader, *, read_size: int = 1 << 20) -> Reader:
    """A reader of the decompressed bytes of ``source``.

    Raises OperationError (code ``backup_corrupt``) when the stream is damaged
    or truncated; the raw sha256 check after it catches anything subtler.
    """
    check_level(compression, None)
    if compression == "zstd":
        return _ZstdReader(source, read_size)
    if compression == "gzip":
        return _GzipReader(source, read_size)
    return source
