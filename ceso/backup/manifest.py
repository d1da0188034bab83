"""The manifest of a backup set: what the set holds, written last, read by verify, restore and import.

JSON, schema version :data:`SCHEMA_VERSION`. A reader refuses a newer major
schema rather than misreading it; fields it does not know are ignored, so
additions stay readable by older versions. The manifest holds hashes, sizes
and the VM's hardware summary — never a key, credential or guestinfo value.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ceso.backup.pipeline import FileDigest
from ceso.errors import OperationError

__all__ = ["MANIFEST_NAME", "SCHEMA_VERSION", "Manifest", "ManifestFile"]

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
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

    @property
    def digest(self) -> FileDigest:
        return FileDigest(self.logical_bytes, self.stored_bytes, self.sha256_raw, self.sha256_stored)


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
    schema: int = SCHEMA_VERSION
    job_id: str | None = None

    @property
    def logical_bytes(self) -> int:
        return sum(f.logical_bytes for f in self.files)

    @property
    def stored_bytes(self) -> int:
        return sum(f.stored_bytes for f in self.files)

    def to_json(self) -> bytes:
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
