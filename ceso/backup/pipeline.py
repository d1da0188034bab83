"""One file through the data path: source → sha256(raw) → compress → encrypt → sha256(stored) → sink,
and back: stored bytes → sha256(stored) → decrypt → decompress → sha256(raw) → sink.

Memory is flat in the file size: a fixed pool of ``buffer_size`` buffers is
recycled between a reader thread (network receive and the raw hash, both
outside the GIL) and the caller's thread (compression, encryption and the
stored hash), and a writer thread hands at most a few encoded chunks to the
sink, so the stages overlap.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Protocol

from ceso.backup.codec import Reader, decompressing_reader, make_compressor
from ceso.backup.crypto import DecryptingReader, Encryptor
from ceso.errors import OperationError

__all__ = [
    "DecodedStream",
    "FileDigest",
    "IteratorSource",
    "RangeHashes",
    "Sink",
    "Source",
    "range_size_for",
    "store_stream",
]

BUFFER_SIZE = 2 << 20  # fewer, larger reads and codec calls than 1 MiB buffers; 6 MiB in all
POOL = 3  # buffers in flight between the two threads: memory is POOL x BUFFER_SIZE
RANGE_BYTES = 1 << 20  # the smallest range with its own sha256 (see range_size_for)
MAX_RANGES = 16384  # at most this many range hashes per file: the manifest stays around 1 MiB a disk


class Source(Protocol):
    def readinto(self, buffer: bytearray | memoryview, /) -> int: ...


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> object: ...


@dataclass(frozen=True)
class FileDigest:
    """Sizes and hashes of one stored file: raw (as on the datastore) and stored (at the target)."""

    logical_bytes: int
    stored_bytes: int
    sha256_raw: str
    sha256_stored: str
    # The raw bytes cut in ``range_bytes`` pieces, each with its own sha256 (none for a file
    # stored before ranges were hashed): a damaged range is found as it is read, not at the end.
    range_bytes: int = 0
    range_sha256: tuple[str, ...] = ()


def range_size_for(logical_bytes: int) -> int:
    """The range size of a file of ``logical_bytes``: 1 MiB, doubled until at most MAX_RANGES ranges."""
    size = RANGE_BYTES
    while size * MAX_RANGES < logical_bytes:
        size *= 2
    return size


class RangeHashes:
    """The sha256 of each ``size``-byte range of a stream fed in pieces of any length."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.digests: list[str] = []
        self._hash = hashlib.sha256()
        self._fill = 0

    def update(self, data: bytes | memoryview) -> int:
        """Feed ``data``; return how many ranges it completed (their digests are appended)."""
        view = memoryview(data)
        done = 0
        while view:
            take = min(len(view), self.size - self._fill)
            self._hash.update(view[:take])
            self._fill += take
            view = view[take:]
            if self._fill == self.size:
                self.digests.append(self._hash.hexdigest())
                self._hash, self._fill = hashlib.sha256(), 0
                done += 1
        return done

    def finish(self) -> int:
        """Close the last, shorter range; return 1 if there was one."""
        if self._fill == 0:
            return 0
        self.digests.append(self._hash.hexdigest())
        self._hash, self._fill = hashlib.sha256(), 0
        return 1


class IteratorSource:
    """Chunks of an iterator as a :class:`Source` (``readinto``)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")

    def readinto(self, buffer: bytearray | memoryview, /) -> int:
        view = memoryview(buffer)
        filled = 0
        while filled < len(view):
            if not self._buf:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._buf = memoryview(chunk)
            n = min(len(self._buf), len(view) - filled)
            view[filled : filled + n] = self._buf[:n]
            self._buf = self._buf[n:]
            filled += n
        return filled

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class _ReadAhead:
    """A thread that fills pooled buffers from ``source`` and hashes them (raw sha256)."""

    def __init__(self, source: Source, buffer_size: int, range_bytes: int) -> None:
        self.hash = hashlib.sha256()
        self.ranges = RangeHashes(range_bytes) if range_bytes else None
        self.count = 0
        self._source = source
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(POOL):
            self._free.put(bytearray(buffer_size))
        self._full: queue.Queue[tuple[bytearray, int] | BaseException | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backup-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                buf = self._free.get()
                n = self._source.readinto(buf)
                if n == 0:
                    self._full.put(None)
                    return
                self.hash.update(memoryview(buf)[:n])
                if self.ranges is not None:
                    self.ranges.update(memoryview(buf)[:n])
                self.count += n
                self._full.put((buf, n))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._full.put(exc)

    def buffers(self) -> Iterator[memoryview]:
        """Filled buffers in order; each is recycled when the next one is requested."""
        while True:
            item = self._full.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            buf, n = item
            yield memoryview(buf)[:n]
            self._free.put(buf)

    def close(self) -> None:
        self._stop.set()
        self._free.put(bytearray(0))  # wake the thread if it waits for a buffer
        self._thread.join(timeout=30)


class _WriteBehind:
    """A thread that hands encoded chunks to ``sink`` while the caller's thread encodes the next.

    A local file (its write-back), SFTP and S3 all block in ``write``; behind this the
    target's I/O overlaps compression and hashing. At most ``depth`` chunks wait, so
    memory stays bounded. A sink error is raised in the caller's thread at its next
    :meth:`write` or at :meth:`close`; the thread then drops what still arrives.
    """

    def __init__(self, sink: Sink, depth: int = 2) -> None:
        self._sink = sink
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="backup-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._sink.write(data)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc

    def write(self, data: bytes) -> None:
        self._raise()
        self._queue.put(data)

    def close(self) -> None:
        """Wait until every chunk is written; raise the sink's error if there was one."""
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def stop(self) -> None:
        """The copy failed: drop what waits, and return once the thread no longer touches the sink."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


class _Encoder:
    """Compress, encrypt, hash and write: the consumer side of :func:`store_stream`."""

    def __init__(
        self, sink: _WriteBehind, compression: str, level: int | None, threads: int, key: bytes | None
    ):
        self._sink = sink
        self._compressor = make_compressor(compression, level, threads=threads)
        self._encryptor = Encryptor(key) if key is not None else None
        self.hash = hashlib.sha256()
        self.count = 0

    def _emit(self, data: bytes) -> None:
        if data:
            self.hash.update(data)
            self.count += len(data)
            self._sink.write(data)

    def write(self, raw: memoryview) -> None:
        data = self._compressor.compress(raw)
        self._emit(self._encryptor.update(data) if self._encryptor is not None else data)

    def finish(self) -> None:
        data = self._compressor.flush()
        if self._encryptor is not None:
            data = self._encryptor.update(data) + self._encryptor.finalize()
        self._emit(data)


def store_stream(
    source: Source,
    sink: Sink,
    *,
    compression: str,
    level: int | None = None,
    threads: int = -1,
    key: bytes | None = None,
    on_bytes: Callable[[int], None] | None = None,
    buffer_size: int = BUFFER_SIZE,
    range_bytes: int = 0,
) -> FileDigest:
    """Copy ``source`` to ``sink`` encoded; return sizes and hashes (and, with ``range_bytes``,
    the sha256 of each range of that many raw bytes).

    ``on_bytes(n)`` is called in the caller's thread after each buffer; it may
    raise (cancel, lost lock) to stop the copy. Whatever ``source`` or ``sink``
    raise is re-raised here; the sink is then left incomplete for its owner to
    discard. The reader thread is always stopped before this returns.
    """
    behind = _WriteBehind(sink)
    encoder = _Encoder(behind, compression, level, threads, key)
    ahead = _ReadAhead(source, buffer_size, range_bytes)
    try:
        for view in ahead.buffers():
            encoder.write(view)
            if on_bytes is not None:
                on_bytes(len(view))
        encoder.finish()
        behind.close()
    except BaseException:
        behind.stop()  # before the caller discards the sink: the writer no longer touches it
        raise
    finally:
        ahead.close()
    ranges: tuple[str, ...] = ()
    if ahead.ranges is not None:
        ahead.ranges.finish()
        ranges = tuple(ahead.ranges.digests)
    return FileDigest(
        ahead.count,
        encoder.count,
        ahead.hash.hexdigest(),
        encoder.hash.hexdigest(),
        range_bytes if ranges else 0,
        ranges,
    )


class _HashingReader:
    def __init__(self, source: Reader) -> None:
        self._source = source
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self._source.read(n)
        self.hash.update(data)
        self.count += len(data)
        return data


class DecodedStream:
    """The raw bytes of a stored file, checked against its digest as they are read.

    Iterate :meth:`chunks`; after the last chunk the stored and raw sizes and
    hashes have been compared and an OperationError (code ``backup_corrupt``)
    naming ``name`` has been raised on any difference, so a consumer that saw
    the iteration end normally got exactly the bytes that were backed up.

    A digest with range hashes (:attr:`FileDigest.range_sha256`) is checked range by range too:
    a damaged range raises as soon as its last byte is decoded, before any byte after it is
    handed out, naming ``point``, ``disk`` and the range's offset in the file (mapped through
    ``extents`` for a file that stores only some areas).
    """

    def __init__(
        self,
        source: Reader,
        *,
        name: str,
        compression: str,
        digest: FileDigest,
        key: bytes | None,
        read_size: int = 1 << 20,
        point: str | None = None,
        disk: int | None = None,
        extents: list[list[int]] | None = None,
    ) -> None:
        self.name = name
        self.digest = digest
        self._stored = _HashingReader(source)
        plain: Reader = DecryptingReader(self._stored, key) if key is not None else self._stored
        self._raw = decompressing_reader(compression, plain, read_size=read_size)
        self.raw_hash = hashlib.sha256()
        self.raw_bytes = 0
        self._point = point
        self._disk = disk
        self._extents = extents
        self._ranges = RangeHashes(digest.range_bytes) if digest.range_sha256 else None
        self._checked = 0

    def chunks(self, size: int = BUFFER_SIZE) -> Iterator[bytes]:
        try:
            while True:
                data = self._raw.read(size)
                if not data:
                    break
                self.raw_hash.update(data)
                self.raw_bytes += len(data)
                if self.raw_bytes > self.digest.logical_bytes:
                    raise self._corrupt(f"decodes to more than its {self.digest.logical_bytes} bytes")
                if self._ranges is not None and self._ranges.update(data):
                    self._check_ranges()
                yield data
            if self._ranges is not None and self._ranges.finish():
                self._check_ranges()
            while self._stored.read(BUFFER_SIZE):  # a stream may end before its stored bytes do
                pass
        except OperationError as exc:
            if exc.code == "backup_corrupt" and not exc.message.startswith(self._where()):
                raise self._corrupt(f"{exc.message} (near {self._offset_text(self.raw_bytes)})") from exc
            raise
        self.check()

    def _check_ranges(self) -> None:
        """Compare the ranges completed so far with the manifest's (the newest ones are new)."""
        assert self._ranges is not None
        expected = self.digest.range_sha256
        for i in range(self._checked, len(self._ranges.digests)):
            if i >= len(expected) or self._ranges.digests[i] != expected[i]:
                size = self._ranges.size
                raise self._corrupt(
                    f"range {i + 1} of {len(expected)} ({self._offset_text(i * size)}, up to {size} bytes) "
                    "differs from its sha256 in the manifest",
                    offset=self._disk_offset(i * size),
                )
        self._checked = len(self._ranges.digests)

    def _disk_offset(self, stream_offset: int) -> int:
        """Where byte ``stream_offset`` of the stored stream lies in the file it came from."""
        if self._extents is None:
            return stream_offset
        seen = 0
        for start, length in self._extents:
            if stream_offset < seen + length:
                return int(start) + stream_offset - seen
            seen += length
        return stream_offset

    def _offset_text(self, stream_offset: int) -> str:
        return f"offset {self._disk_offset(stream_offset)}"

    def check(self) -> None:
        d = self.digest
        if self._stored.count != d.stored_bytes or self._stored.hash.hexdigest() != d.sha256_stored:
            raise self._corrupt(
                f"stored bytes differ from the manifest ({self._stored.count} bytes, "
                f"sha256 {self._stored.hash.hexdigest()[:16]}... instead of {d.stored_bytes} bytes, "
                f"{d.sha256_stored[:16]}...)"
            )
        if self.raw_bytes != d.logical_bytes or self.raw_hash.hexdigest() != d.sha256_raw:
            raise self._corrupt(
                f"decoded bytes differ from the manifest ({self.raw_bytes} bytes instead of {d.logical_bytes})"
            )

    def _where(self) -> str:
        parts = [f"backup {self._point}:"] if self._point else []
        if self._disk is not None:
            parts.append(f"disk {self._disk}")
        parts.append(self.name)
        return " ".join(parts)

    def _corrupt(self, why: str, offset: int | None = None) -> OperationError:
        details: dict[str, object] = {"file": self.name}
        if self._point:
            details["point"] = self._point
        if self._disk is not None:
            details["disk"] = self._disk
        if offset is not None:
            details["offset"] = offset
        return OperationError(f"{self._where()}: {why}", code="backup_corrupt", details=details)


def prefetch(chunks: Iterator[bytes], depth: int = 2) -> Generator[bytes, None, None]:
    """Run ``chunks`` in a thread up to ``depth`` items ahead of the consumer.

    Restores decode (read, hash, decrypt, decompress, hash) in that thread
    while the caller's thread sends, so both cores work. An exception of the
    producer is re-raised in the consumer; when the consumer stops early the
    producer is stopped too (at its next item) and joined.
    """
    items: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        items.put(chunk, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            items.put(exc)

    thread = threading.Thread(target=produce, name="restore-decoder", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                items.get_nowait()  # unblock a producer waiting to put
        thread.join(timeout=30)
