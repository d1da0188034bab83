"""``backup verify``: re-read every stored file of a set from its target and check every hash.

Runs where it is called (the CLI process): it needs the target and, for an
encrypted set, the key — no ESXi host is involved. Each file is decrypted and
decompressed as well, so a verified set is one that restores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session

from ceso.backup import catalog
from ceso.backup.pipeline import BUFFER_SIZE, DecodedStream
from ceso.backup.restore import read_manifest
from ceso.errors import CesoError, OperationError

if TYPE_CHECKING:
    from ceso.runtime import Runtime

__all__ = ["VerifyReport", "verify_backup"]


@dataclass
class VerifyReport:
    backup_id: str
    files: int
    logical_bytes: int
    stored_bytes: int
    status: str
    damaged: str | None = None
    error: str | None = None


def verify_backup(runtime: Runtime, ident: str) -> VerifyReport:
    """Check a set; mark it ``verified``, or ``failed`` and raise OperationError naming the damaged file.

    Raises OperationError (code ``backup_corrupt``, details ``file``) for the
    first damaged or missing file, after recording the failure in the catalog.
    """
    from ceso.backup.keys import load_key
    from ceso.backup.targets.registry import open_target

    with Session(runtime.engine) as session:
        row = catalog.find_set(session, ident)
    if row.status not in ("completed", "verified", "failed"):
        raise CesoError(
            f"backup {row.id} is {row.status}; only a finished backup can be verified", code="conflict"
        )
    target = open_target(runtime, row.target)
    try:
        try:
            manifest, _ = read_manifest(target, row.path, expected_sha256=row.manifest_sha256)
            key = (
                load_key(runtime.secrets, expected_id=manifest.encryption["key_id"])
                if manifest.encryption
                else None
            )
            for f in manifest.files:
                reader = target.open_read(f"{row.path}/{f.stored_name}")
                try:
                    stream = DecodedStream(
                        reader, name=f.name, compression=manifest.compression, digest=f.digest, key=key
                    )
                    for _ in stream.chunks(BUFFER_SIZE):
                        pass
                finally:
                    reader.close()
        except CesoError as exc:
            damaged = exc.details.get("file") if exc.code in ("backup_corrupt", "not_found") else None
            if exc.code in ("backup_corrupt", "not_found", "manifest_invalid"):
                catalog.set_status(runtime.engine, set_id=row.id, status="failed", error=exc.message)
                raise OperationError(
                    f"backup {row.id} is damaged: {exc.message}",
                    code="backup_corrupt",
                    details={"file": damaged, "backup_id": row.id},
                ) from exc
            raise
    finally:
        target.close()
    catalog.set_status(runtime.engine, set_id=row.id, status="verified")
    return VerifyReport(
        row.id, len(manifest.files), manifest.logical_bytes, manifest.stored_bytes, "verified"
    )
