"""The backup encryption key: 32 random bytes in the secret store, never in SQL, logs or argv."""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING

from ceso.backup.crypto import key_id
from ceso.errors import CesoError, NotFoundError

if TYPE_CHECKING:
    from ceso.secrets import SecretStore

__all__ = ["ENCRYPTION_KEY_NAME", "ensure_key", "load_key"]

#: Secret-store key of the master key of encrypted backups.
ENCRYPTION_KEY_NAME = "backup:encryption-key"


def load_key(secrets: SecretStore, *, expected_id: str | None = None) -> bytes:
    """The master key. NotFoundError if none is stored; CesoError if it is not ``expected_id``."""
    try:
        value = secrets.get(ENCRYPTION_KEY_NAME)
    except NotFoundError:
        raise NotFoundError(
            "no backup encryption key in the secret store (encrypted backups need the key they were "
            "made with; see docs/backups.md)",
            code="backup_key_missing",
        ) from None
    key = base64.b64decode(value)
    if len(key) != 32:
        raise CesoError("the stored backup encryption key is not 32 bytes", code="backup_key_invalid")
    if expected_id is not None and key_id(key) != expected_id:
        raise CesoError(
            f"the backup was encrypted with key {expected_id}, the secret store holds {key_id(key)}",
            code="wrong_key",
        )
    return key


def ensure_key(secrets: SecretStore) -> str:
    """Create the master key if there is none; return its id (the key itself never leaves here)."""
    try:
        return key_id(load_key(secrets))
    except NotFoundError:
        key = os.urandom(32)
        secrets.set(ENCRYPTION_KEY_NAME, base64.b64encode(key).decode())
        return key_id(key)
