"""The installation's master key: what the SQL secret store encrypts with.

Every machine of an installation (the one that registers hosts, each worker, cesod, beat) gets
the same key file, the way Airflow's Fernet key or AWX's secret key is shared; the secrets
themselves live in SQL, encrypted, so any worker can read any credential and no machine holds
a copy of them. The file has one Fernet key per line: the first encrypts, every line decrypts.
Rotation without downtime is: put a new key on the first line everywhere, run
``ceso secrets rotate`` (re-encrypts every secret under it), then drop the old line.

Where the file is looked for, first found wins: ``master_key_file`` (``CESO_MASTER_KEY_FILE``);
``$CREDENTIALS_DIRECTORY/ceso-master-key`` (a systemd ``LoadCredential=``);
``/run/secrets/ceso_master_key`` (a Docker/Compose secret); ``<data_dir>/master.key``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ceso.errors import ConfigError

__all__ = ["MasterKeys", "key_id", "load_master_keys", "master_key_paths", "new_master_key"]

#: Mounts whose files are readable by design (Docker secrets keep the host file's mode).
_MOUNTED_SECRETS = Path("/run/secrets")


def key_id(key: bytes) -> str:
    """A key's public name: 12 hex digits of its SHA-256 (never the key itself)."""
    return hashlib.sha256(key).hexdigest()[:12]


def new_master_key() -> bytes:
    """A new random Fernet key (URL-safe base64 of 32 bytes)."""
    return base64.urlsafe_b64encode(os.urandom(32))


def master_key_paths(configured: Path | None, data_dir: Path) -> list[Path]:
    """The places searched, in order (only ``configured`` when it is set)."""
    if configured is not None:
        return [configured]
    paths = []
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        paths.append(Path(credentials) / "ceso-master-key")
    paths += [_MOUNTED_SECRETS / "ceso_master_key", data_dir / "master.key"]
    return paths


@dataclass(frozen=True)
class MasterKeys:
    """The loaded keys: ``keys[0]`` encrypts; all decrypt. ``path`` is where they came from."""

    path: Path
    keys: tuple[bytes, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id(k) for k in self.keys)

    @property
    def primary_id(self) -> str:
        return self.ids[0]

    def encrypt(self, value: str) -> str:
        from cryptography.fernet import Fernet

        return Fernet(self.keys[0]).encrypt(value.encode()).decode()

    def decrypt(self, token: str, *, kid: str, name: str) -> str:
        """Decrypt a token made under key ``kid``; ConfigError naming the secret (never its value)
        if no loaded key is ``kid`` or the token does not decrypt."""
        from cryptography.fernet import Fernet, InvalidToken

        for candidate, candidate_id in zip(self.keys, self.ids, strict=True):
            if candidate_id == kid:
                try:
                    return Fernet(candidate).decrypt(token.encode()).decode()
                except InvalidToken:
                    break
        raise ConfigError(
            f"secret {name!r} is encrypted under master key {kid}, which {self.path} does not hold "
            f"(it holds {', '.join(self.ids)}): give this machine the installation's master key",
            code="master_key_mismatch",
        )


def load_master_keys(configured: Path | None, data_dir: Path) -> MasterKeys:
    """Load the first key file found (see the module doc); ``ceso secrets init`` makes one.

    Never makes a key itself: a machine that made its own would encrypt what it writes under a
    key no other machine holds. Raises ConfigError (exit 2) when no file is found, a file is
    readable by other users, or a line is not a Fernet key.
    """
    paths = master_key_paths(configured, data_dir)
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        raise ConfigError(
            "no master key: secret_store is sql and none of "
            + ", ".join(str(p) for p in paths)
            + " exists; copy the installation's master key there, or make the first one with "
            "`ceso secrets init` (docs/operations.md, Secrets)",
            code="master_key_missing",
        )
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and _MOUNTED_SECRETS not in path.parents:
        raise ConfigError(f"{path} is readable by other users; run: chmod 600 {path}", code="master_key_mode")
    keys = []
    for number, raw_line in enumerate(path.read_bytes().splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            decoded = base64.urlsafe_b64decode(line)
        except ValueError:
            decoded = b""
        if len(decoded) != 32:
            raise ConfigError(
                f"{path}, line {number}: not a master key (URL-safe base64 of 32 bytes)",
                code="master_key_invalid",
            )
        keys.append(line)
    if not keys:
        raise ConfigError(f"{path} holds no master key", code="master_key_invalid")
    return MasterKeys(path, tuple(keys))
