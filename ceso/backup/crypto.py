"""Authenticated streaming encryption of stored backup files: AES-256-GCM in chunks.

Format of an encrypted file::

    header  = b"CESOAEAD" | version (1 byte, 1) | chunk size (4 bytes, big-endian)
              | key id (8 bytes) | salt (32 bytes)
    chunk i = AES-256-GCM(file key, nonce(i, final), plaintext_i, aad=header) (ciphertext + 16-byte tag)

* The file key is HKDF-SHA256(master key, salt): every file has its own key, so the
  counter nonces never repeat under one key.
* ``nonce(i, final)`` is the chunk counter (11 bytes, big-endian) and a final flag (1 byte):
  chunks cannot be reordered, dropped or replayed from another file, and a stream cut after
  a whole chunk is detected because its last chunk is not flagged final.
* Every chunk but the last holds exactly ``chunk size`` plaintext bytes; the last holds
  fewer (possibly none), so the reader knows which chunk must carry the final flag.
* The header is authenticated as associated data of every chunk.

The master key comes from the secret store (:mod:`ceso.backup.keys`); no key, nonce
or plaintext is ever logged.
"""

from __future__ import annotations

import hashlib
import os
import struct

from ceso.backup.codec import Reader
from ceso.errors import InvalidInputError, OperationError

__all__ = ["CHUNK_SIZE", "DecryptingReader", "Encryptor", "key_id"]

MAGIC = b"CESOAEAD"
VERSION = 1
CHUNK_SIZE = 1 << 20
TAG = 16
_HEADER = struct.Struct(">8sBI8s32s")
HEADER_SIZE = _HEADER.size


def key_id(master: bytes) -> str:
    """A public fingerprint of a master key (16 hex digits), stored in manifests and file headers."""
    return hashlib.sha256(b"ceso backup key id\0" + master).hexdigest()[:16]


def _file_key(master: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"ceso backup file v1").derive(master)


def _nonce(counter: int, final: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def _check_master(master: bytes) -> None:
    if len(master) != 32:
        raise InvalidInputError("a backup encryption key must be 32 bytes")


class Encryptor:
    """Push plaintext in any sizes; get ciphertext out. Call :meth:`finalize` exactly once."""

    def __init__(self, master: bytes, *, chunk_size: int = CHUNK_SIZE) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        _check_master(master)
        salt = os.urandom(32)
        self.header = _HEADER.pack(MAGIC, VERSION, chunk_size, bytes.fromhex(key_id(master)), salt)
        self._aead = AESGCM(_file_key(master, salt))
        self._chunk = chunk_size
        self._buf = bytearray()
        self._counter = 0
        self._started = False

    def _seal(self, data: bytes | memoryview, final: bool) -> bytes:
        out = self._aead.encrypt(_nonce(self._counter, final), data, self.header)
        self._counter += 1
        return out

    def update(self, data: bytes | memoryview) -> bytes:
        """Ciphertext for every whole chunk now available (the header first)."""
        out = bytearray()
        if not self._started:
            out += self.header
            self._started = True
        self._buf += data
        full = len(self._buf) - len(self._buf) % self._chunk
        # A full chunk is never the final one (finalize always adds a short one), so it can be
        # sealed as soon as it is complete.
        view = memoryview(self._buf)
        for start in range(0, full, self._chunk):
            out += self._seal(view[start : start + self._chunk], final=False)
        view.release()
        del self._buf[:full]
        return bytes(out)

    def finalize(self) -> bytes:
        """The header (if nothing was written yet) and the final, short chunk."""
        out = b"" if self._started else self.header
        self._started = True
        final = self._seal(bytes(self._buf), final=True)
        self._buf.clear()
        return out + final


class DecryptingReader:
    """Reads plaintext from an encrypted stream, authenticating every chunk.

    Raises OperationError (code ``backup_corrupt``) for a damaged, truncated,
    reordered or extended stream, and InvalidInputError (code ``wrong_key``)
    when the file was encrypted with another key.
    """

    def __init__(self, source: Reader, master: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        _check_master(master)
        header = _read_exact(source, HEADER_SIZE)
        if len(header) != HEADER_SIZE:
            raise OperationError("encrypted file is shorter than its header", code="backup_corrupt")
        magic, version, chunk, kid, salt = _HEADER.unpack(header)
        if magic != MAGIC or version != VERSION or not 0 < chunk <= 64 << 20:
            raise OperationError("not a ceso encrypted file (bad header)", code="backup_corrupt")
        if kid.hex() != key_id(master):
            raise InvalidInputError(
                f"file was encrypted with key {kid.hex()}, the secret store has {key_id(master)}",
                code="wrong_key",
            )
        self._source = source
        self._header = header
        self._aead = AESGCM(_file_key(master, salt))
        self._chunk = chunk
        self._counter = 0
        self._done = False
        self._plain = b""
        self._pos = 0

    def _next_chunk(self) -> None:
        from cryptography.exceptions import InvalidTag

        sealed = _read_exact(self._source, self._chunk + TAG)
        final = len(sealed) < self._chunk + TAG
        if len(sealed) < TAG:
            raise OperationError("encrypted file is truncated", code="backup_corrupt")
        try:
            self._plain = self._aead.decrypt(_nonce(self._counter, final), sealed, self._header)
        except InvalidTag:
            raise OperationError(
                f"encrypted chunk {self._counter} failed authentication (damaged or truncated)",
                code="backup_corrupt",
            ) from None
        self._pos = 0
        self._counter += 1
        if final:
            if self._source.read(1):
                raise OperationError("data after the final encrypted chunk", code="backup_corrupt")
            self._done = True

    def read(self, n: int = -1, /) -> bytes:
        while self._pos >= len(self._plain):
            if self._done:
                return b""
            self._next_chunk()
        size = len(self._plain) - self._pos if n < 0 else min(n, len(self._plain) - self._pos)
        out = self._plain[self._pos : self._pos + size]
        self._pos += size
        return out


def _read_exact(source: Reader, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at the end of the stream."""
    parts: list[bytes] = []
    left = n
    while left:
        part = source.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)
