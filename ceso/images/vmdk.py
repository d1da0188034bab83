"""Stream-optimized VMDK: read it as it streams by, write it as a thin (sparse) flat disk.

The format (VMware's *Virtual Disk Format 5.0*, "Stream-Optimized Compressed Sparse
Extents") is a 512-byte sparse extent header (magic ``KDMV``), the embedded text
descriptor, then sector-aligned markers: a grain marker (``lba`` u64, ``size`` u32, then
``size`` bytes of a zlib-compressed grain) or a metadata marker (``size`` 0, ``type`` u32:
end of stream, grain table, grain directory, footer) followed by ``lba`` sectors of
metadata. Grains come in any order; a grain that is absent reads as zeros. Reading needs
no seek, so an OVA is converted while it downloads, one grain in memory at a time.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from ceso.errors import InvalidInputError

__all__ = [
    "SECTOR",
    "StreamHeader",
    "descriptor_text",
    "flat_descriptor",
    "read_grains",
    "read_header",
    "tools_version",
    "write_thin",
]

SECTOR = 512
_MAGIC = 0x564D444B  # "KDMV" little-endian
_FLAG_COMPRESSED = 1 << 16
_FLAG_MARKERS = 1 << 17
_MARKER_EOS, _MARKER_GT, _MARKER_GD, _MARKER_FOOTER = 0, 1, 2, 3
#: A grain larger than this is refused (VMware writes 64 KiB; qemu-img the same).
_MAX_GRAIN = 16 * 2**20


class Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class StreamHeader:
    """What the sparse extent header says: the disk's size, grain size and its descriptor."""

    capacity_bytes: int
    grain_bytes: int
    descriptor: str


def _exactly(stream: Reader, n: int, what: str) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise InvalidInputError(f"the VMDK ends in the middle of {what}")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_header(stream: Reader) -> StreamHeader:
    """Read the header and the embedded descriptor, leaving ``stream`` at the first marker.

    InvalidInputError for anything but a compressed stream-optimized sparse extent (a flat or
    a monolithic sparse VMDK is not what an OVA carries and is refused, not guessed at).
    """
    head = _exactly(stream, SECTOR, "its header")
    magic, version, flags, capacity, grain, desc_off, desc_size = struct.unpack_from("<IIIQQQQ", head, 0)
    overhead = struct.unpack_from("<Q", head, 64)[0]
    compress = struct.unpack_from("<H", head, 77)[0]
    if magic != _MAGIC:
        raise InvalidInputError("the disk is not a VMDK sparse extent (no KDMV header)")
    if version != 3 or not flags & _FLAG_COMPRESSED or not flags & _FLAG_MARKERS or compress != 1:
        raise InvalidInputError(
            "the disk is not a stream-optimized VMDK (version 3, deflate-compressed grains with markers); "
            "convert it first, e.g. `qemu-img convert -O vmdk -o subformat=streamOptimized`"
        )
    if not 1 <= grain <= _MAX_GRAIN // SECTOR or capacity <= 0 or overhead < 1:
        raise InvalidInputError(
            f"the VMDK header is implausible (grain {grain} sectors, capacity {capacity})"
        )
    consumed = 1
    descriptor = b""
    if desc_off and desc_size:
        if desc_off < consumed or desc_size > 2048:
            raise InvalidInputError("the VMDK's embedded descriptor is out of place")
        _exactly(stream, (desc_off - consumed) * SECTOR, "its header")
        descriptor = _exactly(stream, desc_size * SECTOR, "its descriptor")
        consumed = desc_off + desc_size
    if overhead < consumed:
        raise InvalidInputError("the VMDK's header overlaps its data")
    _exactly(stream, (overhead - consumed) * SECTOR, "its header")
    return StreamHeader(
        capacity_bytes=capacity * SECTOR,
        grain_bytes=grain * SECTOR,
        descriptor=descriptor.split(b"\0", 1)[0].decode("utf-8", "replace"),
    )


def read_grains(stream: Reader, header: StreamHeader) -> Iterator[tuple[int, bytes]]:
    """Each grain after :func:`read_header`: ``(byte offset, data)``, data at most one grain.

    Stops at the end-of-stream marker; InvalidInputError for a torn or corrupt stream (a
    grain that does not decompress, lies past the disk's end or has no end marker).
    """
    while True:
        sector = _exactly(stream, SECTOR, "a marker")
        value, size = struct.unpack_from("<QI", sector, 0)
        if size == 0:
            kind = struct.unpack_from("<I", sector, 12)[0]
            if kind == _MARKER_EOS:
                return
            if kind not in (_MARKER_GT, _MARKER_GD, _MARKER_FOOTER):
                raise InvalidInputError(f"the VMDK has an unknown marker type {kind}")
            _exactly(stream, value * SECTOR, "its metadata")
            continue
        if size > _MAX_GRAIN + 4096:
            raise InvalidInputError(f"the VMDK has a grain of {size} compressed bytes")
        padded = -(-(12 + size) // SECTOR) * SECTOR  # marker and grain, to a whole sector
        payload = (sector + _exactly(stream, padded - SECTOR, "a grain"))[12 : 12 + size]
        offset = value * SECTOR
        if offset >= header.capacity_bytes or offset % header.grain_bytes:
            raise InvalidInputError(f"the VMDK has a grain at sector {value}, outside its grain layout")
        try:
            data = zlib.decompressobj().decompress(payload, header.grain_bytes)
        except zlib.error as exc:
            raise InvalidInputError(f"a grain of the VMDK does not decompress ({exc})") from None
        yield offset, data[: header.capacity_bytes - offset]


def write_thin(stream: Reader, out: BinaryIO) -> StreamHeader:
    """Convert the stream-optimized VMDK on ``stream`` into flat disk bytes on ``out`` (seekable).

    Grains of zeros are skipped (a hole, not written), so on a file system with sparse files
    the flat disk is thin; ``out`` ends at the disk's capacity. Returns the header read.
    """
    header = read_header(stream)
    for offset, data in read_grains(stream, header):
        if data.count(0) == len(data):
            continue
        out.seek(offset)
        out.write(data)
    out.truncate(header.capacity_bytes)
    return header


_TOOLS = re.compile(r'^ddb\.toolsVersion\s*=\s*"(\d+)"', re.MULTILINE)


def tools_version(head: bytes) -> int:
    """The VMware Tools version a sparse VMDK's embedded descriptor declares (``ddb.toolsVersion``)
    from its first bytes ``head``; 0 if none (or ``head`` is too short to hold the descriptor).
    2147483647 means tools managed by the guest (open-vm-tools, as in Ubuntu's cloud images)."""
    if len(head) < SECTOR or head[:4] != b"KDMV":
        return 0
    offset, size = struct.unpack_from("<QQ", head, 28)
    text = head[offset * SECTOR : (offset + size) * SECTOR].split(b"\0", 1)[0].decode("utf-8", "replace")
    match = _TOOLS.search(text)
    return int(match.group(1)) if match else 0


def descriptor_text(header: StreamHeader) -> str:
    """The embedded descriptor (empty if the disk has none)."""
    return header.descriptor


def flat_descriptor(flat_name: str, capacity_bytes: int, *, adapter: str = "lsilogic") -> str:
    """The text descriptor of a thin VMFS disk whose data is ``flat_name`` (a file beside it).

    This is what ESXi writes for a thin disk (``createType="vmfs"``, one ``VMFS`` extent);
    the geometry is the one ESXi derives from the size (255 heads, 63 sectors).
    """
    sectors = capacity_bytes // SECTOR
    cylinders = max(1, sectors // (255 * 63))
    return (
        "# Disk DescriptorFile\n"
        "version=1\n"
        'encoding="UTF-8"\n'
        "CID=fffffffe\n"
        "parentCID=ffffffff\n"
        'createType="vmfs"\n'
        "\n"
        "# Extent description\n"
        f'RW {sectors} VMFS "{flat_name}"\n'
        "\n"
        "# The Disk Data Base\n"
        "#DDB\n"
        "\n"
        f'ddb.adapterType = "{adapter}"\n'
        f'ddb.geometry.cylinders = "{cylinders}"\n'
        'ddb.geometry.heads = "255"\n'
        'ddb.geometry.sectors = "63"\n'
        'ddb.thinProvisioned = "1"\n'
        'ddb.virtualHWVersion = "13"\n'
    )
