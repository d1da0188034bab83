"""The manifest of a backup set: what the set holds, written last, read by verify, restore and import.

JSON, schema version :data:`SCHEMA_VERSION`. A reader refuses a newer major
schema rather than misreading it; fields it does not know are ignored, so
additions stay readable by older versions. The manifest holds hashes, sizes
and the VM's hardware summary — never a key, credential or guestinfo value.

Schema 2 adds points that store only some areas of a disk (``extents`` and
``disk_bytes`` on the file; ``scope`` and ``parent`` on the set, see
:mod:`ceso.backup.ranges`). A set that has such a file is written as schema 2,
so a reader that would restore its bytes as a whole file refuses it; every
other set stays schema 1.

Fields added since, readable by any reader of the same schema (an older one ignores them):

* ``range_bytes`` / ``range_sha256`` on a file: the sha256 of each ``range_bytes`` range of its
  raw bytes, checked as a restore or verify reads them (:class:`~ceso.backup.pipeline.DecodedStream`).
* ``merged_from`` on a set: a synthetic full, merged by ``backup prune`` from a full and its
  incrementals (:mod:`ceso.backup.synthetic`); it stands for the last of them.
* ``vm_config.carried``: the hardware a clone carries besides disks and NICs (CD-ROMs, serial
  ports, USB controllers, NIC PCI slots, ``disk.EnableUUID``, cores per socket, reservations,
  Secure Boot; :mod:`ceso.backup.hardware`), which a restore as a new VM gives it; a set without
  it restores without them.

A manifest rewritten by a prune that merged a chain is first written beside the old one as
:data:`NEXT_NAME`; :func:`read_manifest` reads it when the catalog already expects it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ceso.backup.pipeline import FileDigest
from ceso.errors import OperationError

if TYPE_CHECKING:
    from ceso.backup.targets.base import Target

__all__ = ["MANIFEST_NAME", "NEXT_NAME", "SCHEMA_VERSION", "Manifest", "ManifestFile", "read_manifest"]

SCHEMA_VERSION = 2
AREAS_SCHEMA = 2  # the first schema with area-mapped files
MANIFEST_NAME = "manifest.json"
NEXT_NAME = "manifest.next.json"  # a rewritten manifest waiting to replace MANIFEST_NAME
MAX_MANIFEST_BYTES = 8 << 20


@dataclass(frozen=True)
class ManifestFile:
    """One stored file. ``role``: vmx, nvram, descriptor or extent; disks carry ``disk``/``link``."""

    name: str
    role: str
    source: str
    stored_name: str
    logical_bytes: int
    stored_bytes: int
    sha256_raw: str
    sha256_stored: str
    disk: int | None = None
    link: int | None = None  # position in the disk's chain, 0 = base
    # Area-mapped data file: the stored bytes are these (start, length) areas of the file, in
    # order; the file on the datastore is ``disk_bytes`` long, and ``change_id`` is the disk's
    # CBT changeId at the backup snapshot (what the next incremental asks changes since).
    extents: list[list[int]] | None = None
    disk_bytes: int | None = None
    change_id: str | None = None
    range_bytes: int = 0
    range_sha256: list[str] | None = None

    @property
    def digest(self) -> FileDigest:
        return FileDigest(
            self.logical_bytes,
            self.stored_bytes,
            self.sha256_raw,
            self.sha256_stored,
            self.range_bytes,
            tuple(self.range_sha256 or ()),
        )


@dataclass
class Manifest:
    """Everything needed to verify and restore a set without the catalog."""

    id: str
    vm: str
    host: str
    kind: str
    created_at: str
    compression: str
    level: int
    encryption: dict[str, str] | None
    ceso_version: str
    vm_config: dict[str, Any]
    files: list[ManifestFile] = field(default_factory=list)
    completed_at: str | None = None
    schema: int = 1
    job_id: str | None = None
    scope: str = "full"  # full | incremental
    # An incremental's parent point: {"id", "path", "manifest_sha256"} at the same target.
    parent: dict[str, str] | None = None
    chain_depth: int = 0  # incrementals since the full (0 for a full)
    # A synthetic full: the points it was merged from, oldest first ({"id", "path",
    # "manifest_sha256"} each); it holds the disks as they were at the last of them.
    merged_from: list[dict[str, str]] | None = None

    @property
    def logical_bytes(self) -> int:
        return sum(f.logical_bytes for f in self.files)

    @property
    def stored_bytes(self) -> int:
        return sum(f.stored_bytes for f in self.files)

    def to_json(self) -> bytes:
        if any(f.extents is not None for f in self.files) or self.parent is not None:
            self.schema = max(self.schema, AREAS_SCHEMA)
        body = asdict(self)
        body["logical_bytes"], body["stored_bytes"] = self.logical_bytes, self.stored_bytes
        return json.dumps(body, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> Manifest:
        """Parse a manifest; OperationError (code ``manifest_invalid``) names ``where`` on any problem."""
        try:
            body = json.loads(data)
            schema = int(body.get("schema", 0))
            if schema > SCHEMA_VERSION:
                raise OperationError(
                    f"{where}: manifest schema {schema} is newer than this ceso understands ({SCHEMA_VERSION}); "
                    "upgrade ceso",
                    code="manifest_invalid",
                )
            files = [
                ManifestFile(**{k: f[k] for k in ManifestFile.__dataclass_fields__ if k in f})
                for f in body["files"]
            ]
            known = {k: body[k] for k in cls.__dataclass_fields__ if k in body and k != "files"}
            return cls(**known, files=files)
        except OperationError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise OperationError(
                f"{where}: not a valid ceso manifest: {exc}", code="manifest_invalid"
            ) from exc


def _read_all(target: Target, key: str) -> bytes:
    reader = target.open_read(key)
    try:
        body = reader.read(-1)
        while more := reader.read(1 << 20):
            body += more
    finally:
        reader.close()
    return body


def read_manifest(target: Target, path: str, *, expected_sha256: str | None) -> tuple[Manifest, str]:
    """The manifest of the set at ``path``; OperationError if it differs from the catalog's hash.

    When it differs, a rewritten manifest (:data:`NEXT_NAME`) that matches is read instead: a
    prune committed it in the catalog and has not yet put it in place.
    """
    key = f"{path}/{MANIFEST_NAME}"
    body = _read_all(target, key)
    sha = hashlib.sha256(body).hexdigest()
    if (
        expected_sha256 is not None
        and sha != expected_sha256
        and target.size(f"{path}/{NEXT_NAME}") is not None
    ):
        key = f"{path}/{NEXT_NAME}"
        body = _read_all(target, key)
        sha = hashlib.sha256(body).hexdigest()
    if expected_sha256 is not None and sha != expected_sha256:
        raise OperationError(
            f"{MANIFEST_NAME}: differs from the catalog (sha256 {sha[:16]}... instead of {expected_sha256[:16]}...)",
            code="backup_corrupt",
            details={"file": MANIFEST_NAME},
        )
    return Manifest.from_json(body, where=f"target {target.name}: {key}"), sha
