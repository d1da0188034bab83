"""``backup verify``: re-read every stored file of a set (and of every point of its chain, for an
incremental) from its target and check every hash.

Runs where it is called (the CLI process): it needs the target and, for an
encrypted set, the key — no ESXi host is involved. Each file is decrypted and
decompressed as well, so a verified set is one that restores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session

from ceso.backup import catalog
from ceso.backup.manifest import read_manifest
from ceso.backup.pipeline import BUFFER_SIZE, DecodedStream
from ceso.backup.rebuild import Point, read_chain
from ceso.errors import CesoError, OperationError

if TYPE_CHECKING:
    from ceso.backup.targets.base import Target
    from ceso.runtime import Runtime

__all__ = ["VerifyReport", "check_files", "verify_backup"]


@dataclass
class VerifyReport:
    backup_id: str
    files: int
    logical_bytes: int
    stored_bytes: int
    status: str
    damaged: str | None = None
    error: str | None = None


def check_files(target: Target, point: Point) -> None:
    """Read back and decode every stored file of one point, checking every hash."""
    for f in point.manifest.files:
        reader = target.open_read(f"{point.path}/{f.stored_name}")
        try:
            stream = DecodedStream(
                reader,
                name=f.name,
                compression=point.manifest.compression,
                digest=f.digest,
                key=point.key,
                point=point.manifest.id,
                disk=f.disk,
                extents=f.extents,
            )
            for _ in stream.chunks(BUFFER_SIZE):
                pass
        finally:
            reader.close()


def verify_backup(runtime: Runtime, ident: str) -> VerifyReport:
    """Check a set and every point of its chain; mark them ``verified``, or the set (and the
    damaged point) ``failed`` and raise OperationError naming the damaged file.

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
    checking = row.id  # the point whose files are being read
    try:
        try:
            manifest, _ = read_manifest(target, row.path, expected_sha256=row.manifest_sha256)

            def key_for(key_id: str) -> bytes:
                return load_key(runtime.secrets, expected_id=key_id)

            enc = manifest.encryption
            last = Point(manifest, row.path, key_for(enc["key_id"]) if enc else None)
            chain = read_chain(target, last, key_for)  # parents' manifests, checked against their hashes
            for point in chain:  # a point restores only if every point before it does
                checking = point.manifest.id
                check_files(target, point)
        except CesoError as exc:
            damaged = exc.details.get("file") if exc.code in ("backup_corrupt", "not_found") else None
            if exc.code in ("backup_corrupt", "not_found", "manifest_invalid"):
                where = "" if checking == row.id else f" (its chain's point {checking})"
                catalog.set_status(runtime.engine, set_id=row.id, status="failed", error=exc.message)
                if checking != row.id:
                    catalog.set_status(runtime.engine, set_id=checking, status="failed", error=exc.message)
                raise OperationError(
                    f"backup {row.id} is damaged{where}: {exc.message}",
                    code="backup_corrupt",
                    details={"file": damaged, "backup_id": checking},
                ) from exc
            raise
    finally:
        target.close()
    for point in chain[:-1]:
        catalog.set_status(runtime.engine, set_id=point.manifest.id, status="verified")
    catalog.set_status(runtime.engine, set_id=row.id, status="verified")
    return VerifyReport(
        row.id, len(manifest.files), manifest.logical_bytes, manifest.stored_bytes, "verified"
    )
