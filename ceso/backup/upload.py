"""Streaming one file of a backup set back to a datastore: decoded, checked, retried when it breaks.

Shared by a restore as a new VM (:mod:`ceso.backup.restore`) and in place
(:mod:`ceso.backup.inplace`).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING

from ceso.backup.pipeline import DecodedStream, prefetch
from ceso.backup.ranges import merge_layers
from ceso.backup.rebuild import Point, file_bytes, open_layers
from ceso.errors import TransientError

if TYPE_CHECKING:
    from ceso.backup.datastore_files import DatastoreFiles
    from ceso.backup.manifest import Manifest, ManifestFile
    from ceso.backup.progress import ByteProgress
    from ceso.backup.targets.base import Target
    from ceso.jobs.context import JobContext

__all__ = ["UPLOAD_ATTEMPTS", "upload_file"]

log = logging.getLogger(__name__)
UPLOAD_ATTEMPTS = 3


def upload_file(
    ctx: JobContext,
    target: Target,
    http: DatastoreFiles,
    manifest: Manifest,
    f: ManifestFile,
    set_path: str,
    dest: tuple[str, str],
    key: bytes | None,
    progress: ByteProgress,
    chain: Sequence[Point] = (),
) -> None:
    """Stream one stored file back to ``dest`` (datastore, path), checked; a broken upload is retried.

    An area-mapped file (``f.extents``) is rebuilt from ``chain`` (its points, full first, this
    set last; just this set when empty): see :func:`ceso.backup.ranges.merge_layers`.
    """
    if f.extents is not None:
        points = list(chain) or [Point(manifest, set_path, key)]
        _upload_areas(target, http, points, f, dest, progress)
        return
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        reader = target.open_read(f"{set_path}/{f.stored_name}")
        sent = progress.done
        decoded: Generator[bytes, None, None] | None = None
        try:
            stream = DecodedStream(
                reader,
                name=f.name,
                compression=manifest.compression,
                digest=f.digest,
                key=key,
                point=manifest.id,
                disk=f.disk,
            )
            decoded = prefetch(stream.chunks())  # decode in a thread while this one sends

            def chunks(decoded: Iterator[bytes] = decoded) -> Iterator[bytes]:
                for chunk in decoded:
                    progress(len(chunk))
                    yield chunk

            http.upload(dest[0], dest[1], f.logical_bytes, chunks())
            return
        except TransientError:
            progress.done = sent
            if attempt == UPLOAD_ATTEMPTS:
                raise
            log.warning("upload of %s broke; starting it again (%d)", f.name, attempt + 1)
        finally:
            if decoded is not None:
                decoded.close()  # the decoding thread stops and is joined before its reader closes
            reader.close()


def _upload_areas(
    target: Target,
    http: DatastoreFiles,
    chain: Sequence[Point],
    f: ManifestFile,
    dest: tuple[str, str],
    progress: ByteProgress,
) -> None:
    """Rebuild an area-mapped file from its chain's layers and upload it; a broken upload is retried."""
    size = file_bytes(f)
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        sent = progress.done
        layers, readers = open_layers(target, chain, f)
        merged: Generator[bytes, None, None] | None = None
        try:
            merged = prefetch(merge_layers(layers, size))

            def chunks(merged: Iterator[bytes] = merged) -> Iterator[bytes]:
                for chunk in merged:
                    progress(len(chunk))
                    yield chunk

            http.upload(dest[0], dest[1], size, chunks())
            return
        except TransientError:
            progress.done = sent
            if attempt == UPLOAD_ATTEMPTS:
                raise
            log.warning("upload of %s broke; starting it again (%d)", f.name, attempt + 1)
        finally:
            if merged is not None:
                merged.close()
            for reader in readers:
                reader.close()
