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

__all__ = ["DecodedStream", "FileDigest", "Sink", "Source", "store_stream"]

BUFFER_SIZE = 2 << 20  # fewer, larger reads and codec calls than 1 MiB buffers; 6 MiB in all
POOL = 3  # buffers in flight between the two threads: memory is POOL x BUFFER_SIZE


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


class _ReadAhead:
    """A thread that fills pooled buffers from ``source`` and hashes them (raw sha256)."""

    def __init__(self, source: Source, buffer_size: int) -> None:
        self.hash = hashlib.sha256()
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
) -> FileDigest:
    """Copy ``source`` to ``sink`` encoded; return sizes and hashes.

    ``on_bytes(n)`` is called in the caller's thread after each buffer; it may
    raise (cancel, lost lock) to stop the copy. Whatever ``source`` or ``sink``
    raise is re-raised here; the sink is then left incomplete for its owner to
    discard. The reader thread is always stopped before this returns.
    """
    behind = _WriteBehind(sink)
    encoder = _Encoder(behind, compression, level, threads, key)
    ahead = _ReadAhead(source, buffer_size)
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
    return FileDigest(ahead.count, encoder.count, ahead.hash.hexdigest(), encoder.hash.hexdigest())


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
    ) -> None:
        self.name = name
        self.digest = digest
        self._stored = _HashingReader(source)
        plain: Reader = DecryptingReader(self._stored, key) if key is not None else self._stored
        self._raw = decompressing_reader(compression, plain, read_size=read_size)
        self.raw_hash = hashlib.sha256()
        self.raw_bytes = 0

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
                yield data
            while self._stored.read(BUFFER_SIZE):  # a stream may end before its stored bytes do
                pass
        except OperationError as exc:
            if exc.code == "backup_corrupt" and not exc.message.startswith(self.name):
                raise self._corrupt(exc.message) from exc
            raise
        self.check()

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

    def _corrupt(self, why: str) -> OperationError:
        return OperationError(f"{self.name}: {why}", code="backup_corrupt", details={"file": self.name})


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
