"""Small real image packages for import tests: an OVF descriptor shaped like Ubuntu's cloud image
OVA, and a stream-optimized VMDK made by ``qemu-img`` (Debian's qemu-utils), not by ceso.

``qemu-img`` missing fails the test (it never skips): ops/dev/setup.sh installs it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.tls import self_signed

__all__ = ["MIB", "https_server", "make_ova", "make_raw", "ovf_descriptor", "stream_vmdk"]

MIB = 2**20

#: Ubuntu's ubuntu-24.04-server-cloudimg-amd64.ovf, cut to what ceso reads: one VM, cloud-init's
#: OVF properties, a SCSI disk, an IDE CD-ROM for the OVF environment, vmxnet3, a video card.
_OVF = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
{files}
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
{disks}
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="94" vmw:osType="ubuntu64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <ProductSection ovf:required="false">
      <Info>Cloud-Init customization</Info>
      <Product>ubuntu 24.04 LTS</Product>
{properties}
    </ProductSection>
    <VirtualHardwareSection ovf:transport="iso">
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-10</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>1024MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>1024</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI Controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:Address>1</rasd:Address>
        <rasd:Description>IDE Controller</rasd:Description>
        <rasd:ElementName>VirtualIDEController 1</rasd:ElementName>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:ResourceType>5</rasd:ResourceType>
      </Item>
      <Item ovf:required="false">
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>false</rasd:AutomaticAllocation>
        <rasd:ElementName>CD-ROM 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:Parent>4</rasd:Parent>
        <rasd:ResourceSubType>vmware.cdrom.remotepassthrough</rasd:ResourceSubType>
        <rasd:ResourceType>15</rasd:ResourceType>
      </Item>
{disk_items}
      <Item>
        <rasd:AddressOnParent>2</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on "VM Network"</rasd:Description>
        <rasd:ElementName>Ethernet 1</rasd:ElementName>
        <rasd:InstanceID>7</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <Item ovf:required="false">
        <rasd:AutomaticAllocation>false</rasd:AutomaticAllocation>
        <rasd:ElementName>Video card</rasd:ElementName>
        <rasd:InstanceID>8</rasd:InstanceID>
        <rasd:ResourceType>24</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="cpuHotAddEnabled" vmw:value="true"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""

_PROPERTIES = ("instance-id", "hostname", "seedfrom", "public-keys", "user-data", "password")


def ovf_descriptor(
    name: str,
    disks: list[tuple[str, int, int]],
    *,
    properties: tuple[str, ...] = _PROPERTIES,
    disk_format: str = "streamOptimized",
) -> str:
    """A descriptor for ``disks`` (file name, file size, capacity bytes), all on SCSI 0."""
    files = "\n".join(
        f'    <File ovf:href="{href}" ovf:id="file{i}" ovf:size="{size}"/>'
        for i, (href, size, _) in enumerate(disks)
    )
    sections = "\n".join(
        f'    <Disk ovf:capacity="{cap}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk{i}" '
        f'ovf:fileRef="file{i}" '
        f'ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#{disk_format}"/>'
        for i, (_, _, cap) in enumerate(disks)
    )
    items = "\n".join(
        f"""      <Item>
        <rasd:AddressOnParent>{i}</rasd:AddressOnParent>
        <rasd:ElementName>Hard Disk {i + 1}</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk{i}</rasd:HostResource>
        <rasd:InstanceID>{60 + i}</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>"""
        for i in range(len(disks))
    )
    props = "\n".join(
        f'      <Property ovf:key="{key}" ovf:type="string" ovf:userConfigurable="true" ovf:value=""/>'
        for key in properties
    )
    return _OVF.format(name=name, files=files, disks=sections, disk_items=items, properties=props)


def make_raw(path: Path, size: int, *, seed: int = 1) -> bytes:
    """A raw disk of ``size`` bytes: a few non-zero stretches (a header, a middle, the end), zeros between."""
    data = bytearray(size)
    for offset in (0, size // 3 + 4096 + 7, size - 70_000):
        chunk = hashlib.sha256(f"{seed}:{offset}".encode()).digest() * 2048  # 64 KiB
        data[offset : offset + len(chunk)] = chunk[: size - offset]
    path.write_bytes(bytes(data))
    return bytes(data)


def stream_vmdk(raw: Path, vmdk: Path) -> None:
    """``qemu-img convert -O vmdk -o subformat=streamOptimized``: the VMDK ESXi exports in an OVA."""
    qemu_img = shutil.which("qemu-img")
    assert qemu_img, "qemu-img is missing: run ops/dev/setup.sh (Debian package qemu-utils)"
    subprocess.run(
        [
            qemu_img,
            "convert",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            str(raw),
            str(vmdk),
        ],
        check=True,
        capture_output=True,
    )


def make_ova(
    directory: Path,
    name: str,
    disks: list[bytes],
    *,
    manifest: bool = True,
    descriptor: str | None = None,
    corrupt: str | None = None,
) -> Path:
    """``directory/name.ova`` holding ``disks`` (raw bytes, converted by qemu-img), its descriptor
    (``descriptor`` or one made by :func:`ovf_descriptor`) and a SHA256 manifest. ``corrupt`` names
    a file whose manifest digest is wrong."""
    entries: list[tuple[str, bytes]] = []
    for i, raw in enumerate(disks):
        raw_path = directory / f"{name}-{i}.raw"
        raw_path.write_bytes(raw)
        vmdk = directory / f"{name}-disk{i}.vmdk"
        stream_vmdk(raw_path, vmdk)
        os.unlink(raw_path)
        entries.append((vmdk.name, vmdk.read_bytes()))
    text = descriptor or ovf_descriptor(
        name, [(href, len(b), len(disks[i])) for i, (href, b) in enumerate(entries)]
    )
    entries.insert(0, (f"{name}.ovf", text.encode()))
    if manifest:
        lines = [
            f"SHA256({n})= {'0' * 64 if n == corrupt else hashlib.sha256(b).hexdigest()}\n"
            for n, b in entries
        ]
        entries.insert(1, (f"{name}.mf", "".join(lines).encode()))
    path = directory / f"{name}.ova"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for n, data in entries:
            info = tarfile.TarInfo(n)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@contextlib.contextmanager
def https_server(
    directory: Path, *, break_at: int | None = None, ranges: bool = True
) -> Iterator[tuple[str, Path]]:
    """Serve ``directory`` over HTTPS on 127.0.0.1: yields the base URL and the CA file to trust
    (``SSL_CERT_FILE``). GET with ``Range: bytes=N-`` (206, honouring ``If-Range``) unless not
    ``ranges``; with ``break_at`` the first whole-file answer stops after that many bytes of its
    body and the connection is cut, as a flaky network does."""
    tls_dir = directory.parent / f"{directory.name}-tls"
    tls_dir.mkdir(exist_ok=True)
    cert_path, key_path = self_signed(tls_dir, "images")
    state = {"break_at": break_at}
    handler = functools.partial(_FileHandler, directory=str(directory), state=state, ranges=ranges)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert_path
    finally:
        server.shutdown()
        server.server_close()


class _FileHandler(http.server.BaseHTTPRequestHandler):
    """GET of a file of one directory, with single open-ended ranges and a one-time cut."""

    def __init__(self, *args: Any, directory: str, state: dict[str, Any], ranges: bool, **kw: Any) -> None:
        self.root, self.state, self.ranges = Path(directory), state, ranges
        super().__init__(*args, **kw)

    def do_GET(self) -> None:
        path = self.root / self.path.split("?", 1)[0].lstrip("/")
        if "/" in self.path.lstrip("/") or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        wanted = self.headers.get("Range", "")
        start = int(wanted.removeprefix("bytes=").rstrip("-")) if self.ranges and wanted else 0
        if start and self.headers.get("If-Range", etag) != etag:
            start = 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", etag)
        if self.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        cut = self.state["break_at"] if not start else None
        if cut is not None:
            self.state["break_at"] = None
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(data[start:])

    def log_message(self, format: str, *args: object) -> None:  # the stdlib's name
        pass
