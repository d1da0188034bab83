"""Disks as areas (ceso.backup.ranges): reading chosen areas as one stream, and rebuilding a disk
from a full and its incrementals, checked against a disk image kept by the test."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from ceso.backup.ranges import AreaSource, Layer, clip_areas, merge_layers
from ceso.errors import OperationError


class _File:
    """A readable area of a bytes object, like a Range response."""

    def __init__(self, data: bytes, start: int, length: int, opened: list[tuple[int, int]]) -> None:
        self._data = data[start : start + length]
        self._pos = 0
        opened.append((start, length))

    def readinto(self, buffer: bytearray | memoryview, /) -> int:
        n = min(len(buffer), len(self._data) - self._pos, 4096)  # short reads, as a socket gives
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.opened: list[tuple[int, int]] = []

    def open_area(self, datastore: str, path: str, start: int, length: int) -> _File:
        return _File(self.data, start, length, self.opened)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _stored(disk: bytes, areas: list[tuple[int, int]]) -> bytes:
    return b"".join(disk[s : s + n] for s, n in areas)


def test_area_source_reads_only_the_areas_in_order() -> None:
    disk = os.urandom(1 << 20)
    areas = [(0, 10), (4096, 70000), (900000, 5)]
    reader = _Reader(disk)
    source = AreaSource(reader, "ds", "vm/vm-flat.vmdk", areas)
    out = bytearray()
    buf = bytearray(65536)
    while n := source.readinto(buf):
        out += buf[:n]
    assert bytes(out) == _stored(disk, areas)
    assert reader.opened == areas and source.read_bytes == sum(n for _, n in areas)


def test_clip_areas_to_a_short_file() -> None:
    assert clip_areas([(0, 10), (90, 20), (200, 5)], 100) == [(0, 10), (90, 10)]


def test_merge_rebuilds_every_point_of_a_chain() -> None:
    rng = random.Random(7)
    size = 1 << 20
    disk = bytearray(size)
    disk[0:100000] = os.urandom(100000)
    full_areas = [(0, 100000)]
    points = [(full_areas, bytes(disk))]
    for _ in range(6):  # six incrementals of scattered writes, some over earlier ones
        changed: list[tuple[int, int]] = []
        for _ in range(5):
            start = rng.randrange(0, size - 70000) // 4096 * 4096
            length = rng.choice([4096, 65536, 70000])
            disk[start : start + length] = os.urandom(length)
            changed.append((start, length))
        changed.sort()
        merged: list[tuple[int, int]] = []
        for s, n in changed:  # the host reports disjoint areas
            if merged and s <= merged[-1][0] + merged[-1][1]:
                end = max(merged[-1][0] + merged[-1][1], s + n)
                merged[-1] = (merged[-1][0], end - merged[-1][0])
            else:
                merged.append((s, n))
        points.append((merged, bytes(disk)))
    for depth in range(len(points)):
        layers = [
            Layer(areas, _chunks(_stored(image, areas), 3000), f"p{i}")
            for i, (areas, image) in enumerate(points[: depth + 1])
        ]
        assert b"".join(merge_layers(layers, size)) == points[depth][1], depth


def test_merge_refuses_a_stream_of_the_wrong_length() -> None:
    areas = [(0, 10)]
    with pytest.raises(OperationError, match="end early"):
        b"".join(merge_layers([Layer(areas, iter([b"123"]), "short")], 20))
    with pytest.raises(OperationError, match="more stored bytes"):
        b"".join(merge_layers([Layer(areas, iter([b"x" * 11]), "long")], 20))
