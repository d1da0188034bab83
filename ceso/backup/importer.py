"""``backup import``: rebuild catalog entries from the manifests found on a target.

The target, not SQL, is the source of truth about what exists: every
``<vm>/<set>/manifest.json`` is read and, if its set is unknown, catalogued as
``completed`` (run ``backup verify`` to prove it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ceso.backup import catalog
from ceso.backup.manifest import MANIFEST_NAME, read_manifest

if TYPE_CHECKING:
    from ceso.runtime import Runtime

__all__ = ["import_target"]


def import_target(runtime: Runtime, name: str) -> dict[str, Any]:
    """Catalog every set on target ``name`` that the catalog lacks; return counts."""
    from ceso.backup.targets.registry import open_target

    target = open_target(runtime, name)
    imported, known = [], 0
    try:
        for key in target.list(""):
            if not key.endswith("/" + MANIFEST_NAME) or key.count("/") != 2:
                continue
            path = key[: -len(MANIFEST_NAME) - 1]
            manifest, sha = read_manifest(target, path, expected_sha256=None)
            if catalog.record_imported(
                runtime.engine, manifest=manifest, target=name, path=path, manifest_sha256=sha
            ):
                imported.append(manifest.id)
            else:
                known += 1
    finally:
        target.close()
    return {"target": name, "imported": imported, "already_known": known}
