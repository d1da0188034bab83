"""Where host passwords live: the OS keyring, or an encrypted file.

Secrets never go to SQL, logs, argv or job messages. A headless server has no
usable keyring, so ``auto`` falls back to ``<data_dir>/secrets.enc``: a
Fernet-encrypted JSON map whose key sits beside it in ``secret.key``, created
mode 0600 in a 0700 directory, readable by the owning user only.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ceso.errors import CesoError, NotFoundError
from ceso.private_paths import make_private_dir

__all__ = ["FileSecretStore", "KeyringSecretStore", "SecretStore", "open_secret_store"]

_SERVICE = "ceso"


class SecretStore(Protocol):
    """Get, set and delete one secret by key. Missing keys raise NotFoundError."""

    kind: str

    def get(self, key: str) -> str: ...
    def set(self, key: str, value: str) -> None: ...
    def delete(self, key: str) -> None: ...


class KeyringSecretStore:
    """The OS keyring (Secret Service, macOS Keychain, Windows Credential Locker)."""

    kind = "keyring"

    def get(self, key: str) -> str:
        import keyring

        value = keyring.get_password(_SERVICE, key)
        if value is None:
            raise NotFoundError(f"no secret stored for {key} in the OS keyring")
        return str(value)

    def set(self, key: str, value: str) -> None:
        import keyring

        keyring.set_password(_SERVICE, key, value)

    def delete(self, key: str) -> None:
        import keyring
        from keyring.errors import PasswordDeleteError

        with contextlib.suppress(PasswordDeleteError):  # deleting a missing secret is a no-op
            keyring.delete_password(_SERVICE, key)


class FileSecretStore:
    """Secrets in ``secrets.enc`` (Fernet), key in ``secret.key`` (mode 0600)."""

    kind = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.key_path = directory / "secret.key"
        self.data_path = directory / "secrets.enc"

    def _fernet(self) -> object:
        from cryptography.fernet import Fernet

        make_private_dir(self.directory)
        if not self.key_path.exists():
            key = Fernet.generate_key()
            try:
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first; use theirs
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(key)
        mode = self.key_path.stat().st_mode & 0o077
        if mode:
            raise CesoError(f"{self.key_path} is readable by other users; run: chmod 600 {self.key_path}")
        return Fernet(self.key_path.read_bytes().strip())

    def _load(self) -> dict[str, str]:
        from cryptography.fernet import Fernet, InvalidToken

        fernet = self._fernet()
        assert isinstance(fernet, Fernet)
        if not self.data_path.exists():
            return {}
        try:
            data = json.loads(fernet.decrypt(self.data_path.read_bytes()))
        except InvalidToken as exc:
            raise CesoError(f"{self.data_path} cannot be decrypted with {self.key_path}") from exc
        assert isinstance(data, dict)
        return {str(k): str(v) for k, v in data.items()}

    def _save(self, data: dict[str, str]) -> None:
        from cryptography.fernet import Fernet

        fernet = self._fernet()
        assert isinstance(fernet, Fernet)
        tmp = self.data_path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(fernet.encrypt(json.dumps(data).encode()))
        os.replace(tmp, self.data_path)  # atomic: a reader sees the old or the new file

    def items(self) -> dict[str, str]:
        """Every stored secret by name (``ceso secrets import`` copies them into SQL)."""
        return self._load()

    def get(self, key: str) -> str:
        data = self._load()
        if key not in data:
            raise NotFoundError(f"no secret stored for {key} in {self.data_path}")
        return data[key]

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        # Read-modify-write of one file: concurrent writers (jobs sealing params) would lose updates.
        import fcntl

        make_private_dir(self.directory)
        with open(self.directory / "secrets.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def set(self, key: str, value: str) -> None:
        with self._writing():
            data = self._load()
            data[key] = value
            self._save(data)

    def delete(self, key: str) -> None:
        with self._writing():
            data = self._load()
            if data.pop(key, None) is not None:
                self._save(data)


def _keyring_usable() -> bool:
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
    except Exception:
        return False
    if isinstance(backend, fail.Keyring):
        return False
    from keyring.backends import chainer

    # A chainer with no real backends behind it is as good as none.
    return not (isinstance(backend, chainer.ChainerBackend) and not backend.backends)


def open_secret_store(kind: str, data_dir: Path) -> SecretStore:
    """The configured store; ``auto`` prefers a usable OS keyring."""
    if kind == "keyring" or (kind == "auto" and _keyring_usable()):
        return KeyringSecretStore()
    return FileSecretStore(data_dir)


def host_secret_key(host: str) -> str:
    """The secret-store key of a host's API password."""
    return f"host:{host}:password"
