"""Restoring an area-mapped disk: the chain of points it needs and its layers, oldest first.

A point that stored only areas of a disk (:mod:`ceso.backup.ranges`) is restored from the full
that starts its chain and every incremental up to it. :func:`read_chain` follows the manifests'
``parent`` references at the target, checking each manifest's sha256 against the one its child
recorded, so a chain restores (and verifies) without the catalog. :func:`open_layers` opens each
point's stored areas of one disk as a checked stream for :func:`ceso.backup.ranges.merge_layers`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ceso.backup.pipeline import DecodedStream
from ceso.backup.ranges import Layer
from ceso.errors import OperationError

if TYPE_CHECKING:
    from ceso.backup.manifest import Manifest, ManifestFile
    from ceso.backup.targets.base import Target, TargetReader

__all__ = ["MAX_CHAIN", "Point", "file_bytes", "open_layers", "read_chain"]

MAX_CHAIN = 1000  # a guard against a parent loop in damaged manifests
LAYER_CHUNK = 256 << 10


@dataclass(frozen=True)
class Point:
    """One point of a chain: its manifest, where its files are at the target, and its key."""

    manifest: Manifest
    path: str
    key: bytes | None


def file_bytes(f: ManifestFile) -> int:
    """The size of the file as restored (an area-mapped file stores fewer bytes than that)."""
    return f.disk_bytes if f.disk_bytes is not None else f.logical_bytes


def read_chain(target: Target, last: Point, load_key: Callable[[str], bytes]) -> list[Point]:
    """Every point ``last`` needs, its full first and ``last`` last.

    ``load_key(key_id)`` gives the key of an encrypted ancestor. OperationError (code
    ``backup_corrupt``) when a parent is missing, differs from its recorded hash or loops.
    """
    from ceso.backup.manifest import read_manifest

    chain = [last]
    while (ref := chain[0].manifest.parent) is not None:
        if len(chain) > MAX_CHAIN:
            raise OperationError(f"backup {last.manifest.id}: its chain loops", code="backup_corrupt")
        try:
            manifest, _ = read_manifest(target, ref["path"], expected_sha256=ref["manifest_sha256"] or None)
        except OperationError as exc:
            raise OperationError(
                f"backup {last.manifest.id}: parent point {ref['id']}: {exc.message}",
                code="backup_corrupt",
                details={"file": f"{ref['id']}/manifest.json"},
            ) from exc
        enc = manifest.encryption
        chain.insert(0, Point(manifest, ref["path"], load_key(enc["key_id"]) if enc else None))
    return chain


def open_layers(
    target: Target, chain: Sequence[Point], f: ManifestFile
) -> tuple[list[Layer], list[TargetReader]]:
    """The stored areas of ``f``'s disk in each point of ``chain`` as checked layers (and their readers,
    for the caller to close)."""
    layers: list[Layer] = []
    readers: list[TargetReader] = []
    try:
        for point in chain:
            m = point.manifest
            pf = next(
                (x for x in m.files if x.role == "extent" and x.disk == f.disk and x.extents is not None),
                None,
            )
            if pf is None:
                raise OperationError(
                    f"backup {m.id} holds no areas of disk {f.disk} ({f.name})", code="backup_corrupt"
                )
            reader = target.open_read(f"{point.path}/{pf.stored_name}")
            readers.append(reader)
            stream = DecodedStream(
                reader,
                name=pf.name,
                compression=m.compression,
                digest=pf.digest,
                key=point.key,
                read_size=LAYER_CHUNK,
                point=m.id,
                disk=pf.disk,
                extents=pf.extents,
            )
            areas = [(int(a), int(n)) for a, n in pf.extents or []]
            # Small reads and chunks: a restore holds every point's decoder and one decoded chunk of
            # each at once, so the memory a point adds stays small.
            layers.append(Layer(areas=areas, chunks=stream.chunks(LAYER_CHUNK), name=f"{m.id}/{pf.name}"))
    except BaseException:
        for reader in readers:
            reader.close()
        raise
    return layers, readers
