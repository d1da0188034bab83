"""Disks as areas: reading only some ranges of a data file, and rebuilding a disk from layers.

A backup point that knows which areas of a disk matter (allocated for a full, changed for an
incremental; see :mod:`ceso.backup.cbt`) stores only their bytes, concatenated in disk order, and
records the areas (``extents``) and the data file's size (``disk_bytes``) in its manifest.

* :class:`AreaReader` is the seam a data path implements to read those areas from the host:
  :class:`HttpAreaReader` reads them with HTTP Range requests through the host's ``/folder``
  service (the API route). Any other route provides its own reader of the same shape.
* :class:`AreaSource` turns a list of areas into one stream for the backup pipeline.
* :func:`merge_layers` rebuilds a disk, streaming, from a full and its chain of incrementals:
  each byte comes from the newest layer that holds it, a byte that no layer holds is a hole
  (zero). Every layer's stream is read to its end, so its sha256 is checked (by its
  :class:`~ceso.backup.pipeline.DecodedStream`) before the restore is declared good.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ceso.errors import OperationError

if TYPE_CHECKING:
    from ceso.backup.datastore_http import DatastoreHttp
    from ceso.backup.pipeline import Source

__all__ = [
    "AreaReader",
    "AreaSource",
    "HttpAreaReader",
    "Layer",
    "clip_areas",
    "held_areas",
    "merge_layers",
]

Area = tuple[int, int]  # (start, length) in bytes
_ZEROS = bytes(1 << 20)


class AreaReader(Protocol):
    """Opens ``length`` bytes of a datastore file from ``start`` as a readable source."""

    def open_area(self, datastore: str, path: str, start: int, length: int) -> Source: ...


class HttpAreaReader:
    """Areas of datastore files over the host's ``/folder`` service, one Range request each."""

    def __init__(self, http: DatastoreHttp) -> None:
        self.http = http

    def open_area(self, datastore: str, path: str, start: int, length: int) -> Source:
        return self.http.open_range(datastore, path, start, length)


def clip_areas(areas: Sequence[Area], size: int) -> list[Area]:
    """The parts of ``areas`` inside ``[0, size)`` (a data file may be shorter than the disk)."""
    out = []
    for start, length in areas:
        end = min(start + length, size)
        if end > start:
            out.append((start, end - start))
    return out


class AreaSource:
    """The bytes of ``areas`` of one file, in order, as one stream (:class:`~ceso.backup.pipeline.Source`).

    ``read_bytes`` counts what was asked of the host, for metrics and benchmarks.
    """

    def __init__(self, reader: AreaReader, datastore: str, path: str, areas: Sequence[Area]) -> None:
        self._reader = reader
        self._datastore = datastore
        self._path = path
        self._areas = list(areas)
        self._current: Source | None = None
        self._left = 0
        self.read_bytes = 0

    def readinto(self, buffer: bytearray | memoryview, /) -> int:
        view = memoryview(buffer)
        filled = 0
        while filled < len(view):
            if self._left == 0:
                self._close_current()
                if not self._areas:
                    break
                start, length = self._areas.pop(0)
                self._current = self._reader.open_area(self._datastore, self._path, start, length)
                self._left = length
            assert self._current is not None
            n = self._current.readinto(view[filled : filled + min(self._left, len(view) - filled)])
            if n == 0:
                raise OperationError(
                    f"[{self._datastore}] {self._path}: an area ended {self._left} bytes early"
                )
            filled += n
            self._left -= n
            self.read_bytes += n
        return filled

    def _close_current(self) -> None:
        close = getattr(self._current, "close", None)
        if close is not None:
            close()
        self._current = None

    def close(self) -> None:
        self._close_current()


@dataclass
class Layer:
    """One point's stored areas of a disk: ``areas`` in disk order and their bytes as ``chunks``."""

    areas: list[Area]
    chunks: Iterator[bytes]
    name: str


class _Cursor:
    """Exact-size reads from a chunk iterator."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self._buf = memoryview(b"")

    def take(self, n: int) -> Iterator[memoryview]:
        while n > 0:
            if not self._buf:
                chunk = next(self.layer.chunks, None)
                if chunk is None:
                    raise OperationError(f"{self.layer.name}: stored areas end early", code="backup_corrupt")
                self._buf = memoryview(chunk)
            piece = self._buf[:n]
            self._buf = self._buf[len(piece) :]
            n -= len(piece)
            yield piece

    def finish(self) -> None:
        """Read the stream to its end (its digest is checked there); nothing may be left over."""
        if self._buf or next(self.layer.chunks, None) is not None:
            raise OperationError(
                f"{self.layer.name}: more stored bytes than its areas", code="backup_corrupt"
            )


def _zeros(n: int) -> Iterator[bytes]:
    while n > 0:
        piece = min(n, len(_ZEROS))
        yield _ZEROS[:piece]
        n -= piece


def held_areas(layers: Sequence[Layer], size: int) -> list[Area]:
    """The areas of ``[0, size)`` some layer holds, merged and sorted (a synthetic full's extents)."""
    out: list[Area] = []
    for start, length in sorted(a for layer in layers for a in clip_areas(layer.areas, size)):
        if out and start <= out[-1][0] + out[-1][1]:
            end = max(out[-1][0] + out[-1][1], start + length)
            out[-1] = (out[-1][0], end - out[-1][0])
        else:
            out.append((start, length))
    return out


def merge_layers(layers: Sequence[Layer], size: int, *, holes: bool = True) -> Iterator[bytes]:
    """The ``size`` bytes of a disk rebuilt from ``layers`` (oldest first), streaming.

    For each stretch of the disk the newest layer holding it wins; older layers' bytes for that
    stretch are read and dropped, so every layer is consumed in order and to its end. With
    ``holes=False`` the stretches no layer holds are left out: the bytes of :func:`held_areas`.
    """
    cursors = [_Cursor(layer) for layer in layers]
    bounds = {0, size}
    for layer in layers:
        for start, length in layer.areas:
            bounds.update((min(start, size), min(start + length, size)))
    index = [0] * len(layers)  # the next area of each layer not yet passed
    for a, b in itertools.pairwise(sorted(bounds)):
        # Area edges are all in ``bounds``: an area holds all of [a, b) or none of it.
        holders = [i for i, layer in enumerate(layers) if _holds(layer.areas, index, i, a)]
        if not holders:
            if holes:
                yield from _zeros(b - a)
            continue
        for i in holders:
            for piece in cursors[i].take(b - a):
                if i == holders[-1]:
                    yield bytes(piece)
    for layer, cursor in zip(layers, cursors, strict=True):
        # Areas past the end of the rebuilt disk (none for a disk that never shrinks) still count.
        tail = sum(max(0, s + n - max(s, size)) for s, n in layer.areas)
        for _ in cursor.take(tail):
            pass
        cursor.finish()


def _holds(areas: list[Area], index: list[int], i: int, offset: int) -> bool:
    """Whether layer ``i``'s areas hold ``offset``; advances ``index[i]`` past areas ending before it."""
    while index[i] < len(areas) and areas[index[i]][0] + areas[index[i]][1] <= offset:
        index[i] += 1
    return index[i] < len(areas) and areas[index[i]][0] <= offset
