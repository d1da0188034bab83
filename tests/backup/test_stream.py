"""The data path without a job: codecs, chunked AES-GCM, hashes, bounded memory, tamper detection."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from ceso.backup.crypto import CHUNK_SIZE, HEADER_SIZE, TAG, DecryptingReader, Encryptor, key_id
from ceso.backup.pipeline import DecodedStream, FileDigest, store_stream
from ceso.errors import InvalidInputError, OperationError, TransientError

KEY = bytes(range(32))


def sample(size: int = 3 * 1024 * 1024 + 12345) -> bytes:
    third = size // 3
    text = b"".join(b"line %06d of a very ordinary text file\n" % i for i in range(third // 30 + 1))
    return os.urandom(third) + b"\0" * third + text[: size - 2 * third]


class BytesSource:
    def __init__(self, data: bytes) -> None:
        self._io = io.BytesIO(data)

    def readinto(self, buf: bytearray | memoryview) -> int:
        return self._io.readinto(buf)


def store(data: bytes, **kw: object) -> tuple[bytes, FileDigest]:
    sink = io.BytesIO()
    digest = store_stream(BytesSource(data), sink, **kw)  # type: ignore[arg-type]
    return sink.getvalue(), digest


def decode(stored: bytes, digest: FileDigest, compression: str, key: bytes | None) -> bytes:
    stream = DecodedStream(
        io.BytesIO(stored), name="disk-flat.vmdk", compression=compression, digest=digest, key=key
    )
    return b"".join(stream.chunks(100_000))


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
def test_round_trip_every_codec(compression: str, key: bytes | None) -> None:
    data = sample()
    stored, digest = store(data, compression=compression, key=key, buffer_size=256 * 1024)
    assert digest.logical_bytes == len(data) and digest.stored_bytes == len(stored)
    if compression != "none":
        assert len(stored) < len(data) * 0.7  # zeros and text compress; random does not
    if key is not None:
        assert data[-4096:] not in stored
    assert decode(stored, digest, compression, key) == data


def test_empty_file_round_trips() -> None:
    for key in (None, KEY):
        stored, digest = store(b"", compression="zstd", key=key)
        assert digest.logical_bytes == 0
        assert decode(stored, digest, "zstd", key) == b""


def test_flipped_byte_names_the_file() -> None:
    data = sample(1 << 20)
    for key in (None, KEY):
        stored, digest = store(data, compression="zstd", key=key)
        damaged = bytearray(stored)
        damaged[len(damaged) // 2] ^= 0x01
        with pytest.raises(OperationError) as err:
            decode(bytes(damaged), digest, "zstd", key)
        assert err.value.code == "backup_corrupt" and "disk-flat.vmdk" in err.value.message


def _sealed_chunks(stored: bytes) -> tuple[bytes, list[bytes]]:
    body = stored[HEADER_SIZE:]
    step = CHUNK_SIZE + TAG
    return stored[:HEADER_SIZE], [body[i : i + step] for i in range(0, len(body), step)]


def read_all(data: bytes, key: bytes = KEY) -> bytes:
    reader = DecryptingReader(io.BytesIO(data), key)
    return b"".join(iter(lambda: reader.read(70_000), b""))


def test_aead_refuses_truncation_reordering_and_extension() -> None:
    enc = Encryptor(KEY)
    plain = os.urandom(2 * CHUNK_SIZE + 100)
    stored = enc.update(plain) + enc.finalize()
    header, chunks = _sealed_chunks(stored)
    assert len(chunks) == 3
    assert read_all(stored) == plain
    cases = {
        "cut after a whole chunk": header + chunks[0] + chunks[1],
        "reordered": header + chunks[1] + chunks[0] + chunks[2],
        "final chunk dropped mid-way": stored[:-5],
        "extended": stored + b"x",
        "chunk replayed": header + chunks[0] + chunks[0] + chunks[1] + chunks[2],
    }
    for why, data in cases.items():
        with pytest.raises(OperationError) as err:
            read_all(data)
        assert err.value.code == "backup_corrupt", why


def test_exact_multiple_of_chunk_has_an_empty_final_chunk() -> None:
    enc = Encryptor(KEY)
    plain = os.urandom(CHUNK_SIZE)
    stored = enc.update(plain) + enc.finalize()
    assert len(stored) == HEADER_SIZE + CHUNK_SIZE + TAG + TAG
    assert read_all(stored) == plain
    with pytest.raises(OperationError):
        read_all(stored[:-TAG])  # the empty final chunk removed: the full one is not final


def test_wrong_key_is_named_not_garbage() -> None:
    enc = Encryptor(KEY)
    stored = enc.update(b"secret") + enc.finalize()
    other = os.urandom(32)
    with pytest.raises(InvalidInputError) as err:
        read_all(stored, other)
    assert err.value.code == "wrong_key" and key_id(KEY) in err.value.message


def test_memory_stays_flat_for_a_large_stream() -> None:
    """256 MiB of zeros through zstd + AES-GCM: peak traced Python memory stays far below the size."""
    import tracemalloc

    class Zeros:
        def __init__(self, size: int) -> None:
            self.left = size

        def readinto(self, buf: bytearray | memoryview) -> int:
            n = min(len(buf), self.left)
            memoryview(buf)[:n] = b"\0" * n
            self.left -= n
            return n

    class Null:
        def write(self, data: bytes) -> None:
            pass

    tracemalloc.start()
    digest = store_stream(Zeros(256 << 20), Null(), compression="zstd", key=KEY)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert digest.logical_bytes == 256 << 20
    assert peak < 24 << 20, peak


class FailingSink:
    """Records writes; raises OSError (a full disk) on write number ``fail_at``."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.writes: list[int] = []
        self.discarded = False

    def write(self, data: bytes) -> None:
        assert not self.discarded, "written after the copy gave up on the sink"
        if len(self.writes) + 1 == self.fail_at:
            raise OSError(28, "No space left on device")
        self.writes.append(len(data))


def test_a_sink_error_reaches_the_caller() -> None:
    sink = FailingSink(fail_at=2)
    with pytest.raises(OSError, match="No space left"):
        store_stream(BytesSource(sample(8 << 20)), sink, compression="none", buffer_size=1 << 20)  # type: ignore[arg-type]
    assert sink.writes == [1 << 20]


def test_a_stop_from_the_caller_leaves_the_sink_alone_afterwards() -> None:
    # on_bytes raising is how a cancel or a lost lock stops a copy; the owner then discards the sink.
    sink, seen = FailingSink(), []

    def on_bytes(n: int) -> None:
        seen.append(n)
        if len(seen) == 3:
            raise OperationError("cancelled")

    with pytest.raises(OperationError, match="cancelled"):
        store_stream(
            BytesSource(sample(16 << 20)), sink, compression="none", buffer_size=1 << 20, on_bytes=on_bytes
        )  # type: ignore[arg-type]
    sink.discarded = True  # from here on, a late write from the writer thread would fail the test
    written = list(sink.writes)
    time.sleep(0.2)
    assert sink.writes == written and len(written) <= 3


# -- the restore's upload: a decoding thread feeding the sender ---------------------------------------
class StoredReader:
    """A stored file at a target; counts reads made after it was closed."""

    def __init__(self, data: bytes) -> None:
        self._io = io.BytesIO(data)
        self.closed = False
        self.reads_after_close = 0

    def read(self, n: int = -1, /) -> bytes:
        if self.closed:
            self.reads_after_close += 1
            raise ValueError("read of closed file")
        return self._io.read(n)

    def close(self) -> None:
        self.closed = True


class StoredTarget:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.readers: list[StoredReader] = []

    def open_read(self, key: str) -> StoredReader:
        self.readers.append(StoredReader(self.data))
        return self.readers[-1]


class Receiver:
    """Stands in for DatastoreHttp.upload: takes the chunks, or raises ``errors[i]`` on attempt i
    once ``fail_after`` bytes arrived."""

    def __init__(self, *errors: Exception | None, fail_after: int = 1) -> None:
        self.errors = list(errors)
        self.fail_after = fail_after
        self.received: list[bytes] = []

    def upload(self, datastore: str, path: str, size: int, chunks: Iterator[bytes]) -> None:
        error = self.errors.pop(0) if self.errors else None
        got = bytearray()
        for chunk in chunks:
            got += chunk
            if error is not None and len(got) >= self.fail_after:
                raise error
        assert len(got) == size
        self.received.append(bytes(got))


class Progress:
    def __init__(self) -> None:
        self.done = 0

    def __call__(self, n: int) -> None:
        self.done += n


def restore_one(data: bytes, receiver: Receiver, *, damage: bool = False) -> tuple[StoredTarget, Progress]:
    from ceso.backup.manifest import ManifestFile
    from ceso.backup.upload import upload_file

    stored, digest = store(data, compression="zstd")
    if damage:
        flipped = bytearray(stored)
        flipped[len(flipped) // 2] ^= 0x01
        stored = bytes(flipped)
    f = ManifestFile(
        "disk-flat.vmdk", "extent", "[ds] vm/disk-flat.vmdk", "disk-flat.vmdk.zst",
        digest.logical_bytes, digest.stored_bytes, digest.sha256_raw, digest.sha256_stored,
    )  # fmt: skip
    target, progress = StoredTarget(stored), Progress()
    manifest = SimpleNamespace(compression="zstd", id="set-1")
    try:
        upload_file(None, target, receiver, manifest, f, "set", ("ds", "new/disk-flat.vmdk"), None, progress)  # type: ignore[arg-type]
    finally:
        assert not [t for t in threading.enumerate() if t.name == "restore-decoder"], "decoder left running"
        assert all(r.closed and r.reads_after_close == 0 for r in target.readers)
    return target, progress


def test_a_broken_upload_stops_the_decoder_before_its_reader_closes() -> None:
    with pytest.raises(OperationError, match="refused"):
        restore_one(sample(12 << 20), Receiver(OperationError("host refused"), fail_after=1))


def test_a_transient_break_is_retried_from_the_start() -> None:
    data = sample(12 << 20)
    receiver = Receiver(TransientError("connection reset"), fail_after=4 << 20)
    target, progress = restore_one(data, receiver)
    assert receiver.received == [data] and len(target.readers) == 2 and progress.done == len(data)


def test_a_damaged_stored_file_fails_the_upload() -> None:
    receiver = Receiver()
    with pytest.raises(OperationError) as err:
        restore_one(sample(12 << 20), receiver, damage=True)
    assert err.value.code == "backup_corrupt" and "disk-flat.vmdk" in err.value.message
    assert receiver.received == []
