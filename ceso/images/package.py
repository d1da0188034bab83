"""An image package opened for import: an OVA, an OVF with its disk files, or a lone VMDK.

:func:`open_package` reads only the head of the source (the OVA's descriptor and manifest,
or the VMDK's header), so a package ceso refuses (:mod:`ceso.images.ovf`) is refused before
anything is made on a host. :meth:`Package.disks` then hands out each disk's bytes as they
stream by, in the descriptor's order, checking each against the manifest's digest when its
reader is done; :meth:`Package.finish` checks the whole source against ``--sha256``. A
mismatch is an InvalidInputError raised while the job can still undo what it made.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ceso.errors import InvalidInputError, NotFoundError
from ceso.images.ovf import MAX_DESCRIPTOR_BYTES, OvfDisk, OvfImage, descriptor_for_disk, parse_descriptor
from ceso.images.source import CountingReader, Opened, kind_of, open_source, sibling
from ceso.images.vmdk import SECTOR

__all__ = ["DiskStream", "Package", "open_package"]

#: What is kept of each disk's first bytes: its header and embedded descriptor (read for ddb.toolsVersion).
_HEAD_BYTES = 64 * 1024
_MANIFEST_LINE = re.compile(r"^(SHA1|SHA256|SHA512)\((.+)\)\s*=\s*([0-9a-fA-F]+)\s*$")


@dataclass
class DiskStream:
    """One disk file of the package as it streams: its OVF disk, reader and size in bytes."""

    disk: OvfDisk
    reader: CountingReader
    size: int | None

    @property
    def tools_version(self) -> int:
        """What the disk's embedded descriptor declares of VMware Tools (once its head was read)."""
        from ceso.images.vmdk import tools_version

        return tools_version(bytes(self.reader.head))


@dataclass
class Package:
    """An opened package. Close it (or use it as a context manager) when done."""

    source: str
    kind: str  # ova, ovf or vmdk
    descriptor: str  # the OVF descriptor (made up for a lone VMDK)
    image: OvfImage
    digests: dict[str, tuple[str, str]]  # file name → (algorithm, hex) from the manifest
    sha256: str | None  # the whole source's expected digest (--sha256)
    progress: Callable[[int], None] | None = None
    _outer: CountingReader | None = None
    _opened: list[Opened] = field(default_factory=list)
    _tar: Any = None
    _pending: Any = None  # a tar member read ahead while looking for the manifest
    _head: bytes = b""  # a lone VMDK's first bytes, read to learn its size

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        for opened in self._opened:
            opened.close()
        self._opened.clear()

    @property
    def source_size(self) -> int | None:
        """The source file's size, if known (a URL without Content-Length: unknown)."""
        return self._opened[0].size if self._opened else None

    @property
    def upload_bytes(self) -> int:
        """The disks' file sizes summed (0 where unknown): what an upload moves."""
        return sum(d.declared_size or 0 for d in self.image.disks)

    def disks(self) -> Iterator[DiskStream]:
        """Each disk's stream, in the descriptor's order. When the caller comes back for the next
        (or the end), the disk just read is drained and checked against the manifest."""
        for disk in self.image.disks:
            reader, size = self._open_disk(disk)
            yield DiskStream(disk, reader, size)
            reader.drain()
            self._check_digest(disk.href, reader)

    def finish(self) -> None:
        """Read the rest of the source and check it against ``--sha256``; InvalidInputError if it differs."""
        if self.sha256 is None:
            return
        outer = self._outer
        assert outer is not None and outer.hash is not None
        outer.drain()
        got = outer.hash.hexdigest()
        if not hmac.compare_digest(got, self.sha256.lower()):
            raise InvalidInputError(f"{self.source} has sha256 {got}, not the {self.sha256} --sha256 gives")

    # -- one disk ---------------------------------------------------------------------------
    def _open_disk(self, disk: OvfDisk) -> tuple[CountingReader, int | None]:
        algorithm = self.digests.get(disk.href, ("sha256", ""))[0]
        if self.kind == "vmdk":
            assert self._outer is not None
            raw: Any = _Prefixed(self._head, self._outer)
            size = self._opened[0].size
        elif self.kind == "ova":
            member = self._next_member()
            if member is None or member.name.rsplit("/", 1)[-1] != disk.href:
                found = "nothing" if member is None else repr(member.name)
                raise InvalidInputError(
                    f"the OVA holds {found} where the descriptor's next disk {disk.href!r} should be"
                )
            raw, size = self._tar.extractfile(member), member.size
        else:
            opened = open_source(sibling(self.source, disk.href))
            self._opened.append(opened)
            raw, size = opened.stream, opened.size
            if (
                self.sha256 is None
                and opened.size is not None
                and disk.declared_size not in (None, opened.size)
            ):
                raise InvalidInputError(
                    f"{disk.href} has {opened.size} bytes, the OVF says {disk.declared_size}"
                )
        progress = self.progress if self.kind == "ovf" else None  # else the whole source is metered
        return CountingReader(raw, digest=algorithm, progress=progress, keep_head=_HEAD_BYTES), size

    def _next_member(self) -> Any:
        if self._pending is not None:
            member, self._pending = self._pending, None
            return member
        return self._tar.next()

    def _check_digest(self, name: str, reader: CountingReader) -> None:
        expected = self.digests.get(name)
        if expected is None:
            return
        assert reader.hash is not None
        got = reader.hash.hexdigest()
        if not hmac.compare_digest(got, expected[1].lower()):
            raise InvalidInputError(
                f"{name} does not match the package's manifest ({expected[0]} {got}, manifest {expected[1]})"
            )


class _Prefixed:
    """Bytes already read, then the rest of a stream."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self.head, self.rest = head, rest

    def read(self, n: int = -1, /) -> bytes:
        if self.head:
            first = self.head if n < 0 else self.head[:n]
            self.head = self.head[len(first) :]
            return first
        data: bytes = self.rest.read(n)
        return data


def _parse_manifest(text: str) -> dict[str, tuple[str, str]]:
    digests = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _MANIFEST_LINE.match(line.strip())
        if not match:
            raise InvalidInputError(f"the package's manifest has a line ceso cannot read: {line[:100]!r}")
        digests[match.group(2).strip()] = (match.group(1).lower(), match.group(3))
    return digests


def _check(name: str, data: bytes, digests: dict[str, tuple[str, str]]) -> None:
    if name in digests:
        algorithm, want = digests[name]
        got = hashlib.new(algorithm, data).hexdigest()
        if not hmac.compare_digest(got, want.lower()):
            raise InvalidInputError(f"{name} does not match the package's manifest ({algorithm} {got})")


def _read_capped(stream: Any, what: str) -> bytes:
    data: bytes = stream.read(MAX_DESCRIPTOR_BYTES + 1)
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise InvalidInputError(f"{what} is larger than {MAX_DESCRIPTOR_BYTES} bytes")
    return data


def open_package(
    source: str, *, sha256: str | None = None, progress: Callable[[int], None] | None = None
) -> Package:
    """Open ``source`` and read its head: InvalidInputError for a package ceso refuses,
    NotFoundError for a missing file. ``progress(n)`` is told of every ``n`` bytes read."""
    kind = kind_of(urlsplit(source).path)
    if kind is None:
        raise InvalidInputError(f"--from must name an .ova, .ovf or .vmdk file, not {source!r}")
    opened = open_source(source)
    outer = CountingReader(opened.stream, digest="sha256" if sha256 else None, progress=progress)
    try:
        if kind == "ova":
            package = _open_ova(source, outer, sha256)
        elif kind == "ovf":
            package = _open_ovf(source, outer, sha256)
        else:
            package = _open_vmdk(source, outer, sha256, opened.size)
    except BaseException:
        opened.close()
        raise
    package._opened.insert(0, opened)
    package.progress = progress
    return package


def _open_ova(source: str, outer: CountingReader, sha256: str | None) -> Package:
    try:
        tar = tarfile.open(fileobj=outer, mode="r|")  # type: ignore[call-overload]  # noqa: SIM115  # a stream: members in order, nothing extracted to disk
        first = tar.next()
    except tarfile.TarError as exc:
        raise InvalidInputError(f"{source} is not an OVA (a tar archive): {exc}") from None
    if first is None or not first.name.lower().endswith(".ovf") or not first.isfile():
        raise InvalidInputError(f"{source}: an OVA starts with its .ovf descriptor")
    raw = _read_capped(tar.extractfile(first), "the OVA's descriptor")
    digests: dict[str, tuple[str, str]] = {}
    pending = tar.next()
    if pending is not None and pending.name.lower().endswith(".mf"):
        digests = _parse_manifest(
            _read_capped(tar.extractfile(pending), "the OVA's manifest").decode("utf-8", "replace")
        )
        pending = tar.next()
    _check(first.name.rsplit("/", 1)[-1], raw, digests)
    descriptor = raw.decode("utf-8", "replace")
    image = parse_descriptor(descriptor)
    _require_listed(image, digests)
    return Package(
        source, "ova", descriptor, image, digests, sha256, _outer=outer, _tar=tar, _pending=pending
    )


def _open_ovf(source: str, outer: CountingReader, sha256: str | None) -> Package:
    raw = _read_capped(outer, "the OVF descriptor")
    digests: dict[str, tuple[str, str]] = {}
    name = urlsplit(source).path.rsplit("/", 1)[-1]
    manifest = sibling(source, name.rsplit(".", 1)[0] + ".mf")
    try:
        opened = open_source(manifest)
    except NotFoundError:
        opened = None
    if opened is not None:
        try:
            digests = _parse_manifest(_read_capped(opened.stream, "the manifest").decode("utf-8", "replace"))
        finally:
            opened.close()
    _check(name, raw, digests)
    descriptor = raw.decode("utf-8", "replace")
    image = parse_descriptor(descriptor)
    _require_listed(image, digests)
    return Package(source, "ovf", descriptor, image, digests, sha256, _outer=outer)


def _open_vmdk(source: str, outer: CountingReader, sha256: str | None, size: int | None) -> Package:
    head = outer.read(SECTOR)
    if len(head) < SECTOR or head[:4] != b"KDMV":
        raise InvalidInputError(f"{source} is not a VMDK sparse extent (no KDMV header)")
    capacity = struct.unpack_from("<Q", head, 12)[0] * SECTOR
    href = urlsplit(source).path.rsplit("/", 1)[-1]
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", href.rsplit(".", 1)[0]) or "disk"
    descriptor = descriptor_for_disk(href, capacity, size or 0, name=stem)
    image = parse_descriptor(descriptor)
    return Package(source, "vmdk", descriptor, image, {}, sha256, _outer=outer, _head=head)


def _require_listed(image: OvfImage, digests: dict[str, tuple[str, str]]) -> None:
    """A package with a manifest must list every disk in it (an unlisted file is unchecked)."""
    missing = [d.href for d in image.disks if digests and d.href not in digests]
    if missing:
        raise InvalidInputError(f"the package's manifest does not list {', '.join(missing)}")
