"""``vmkfstools`` of an emulated ESXi host: ``-i SRC DST -d thin`` (clone), ``-X SIZE DISK`` (grow)
and ``-U DISK`` (delete).

A clone copies every extent byte for byte (real files, real bytes; holes stay holes, and as
on VMFS a thin copy allocates no 1 MiB block that holds only zeros) and
writes a new descriptor naming the new extent, thin, with a new CID and
ddb.uuid; it prints what ESXi prints ("Destination disk format: VMFS
thin-provisioned", "Cloning disk '...'...", "Clone: 100% done."). Growing
rewrites the extent's sector count (a thin extent file grows as it is written) and — as hostd
re-reads a registered VM's disk — updates the capacity the simulator shows.
"""

from __future__ import annotations

import os
import random
import re
import sys
from pathlib import Path

import emulator as emu

EXTENT = re.compile(
    r'^(?P<access>RW)\s+(?P<sectors>\d+)\s+(?P<type>\S+)\s+"(?P<file>[^"]+)"(?P<rest>.*)$', re.MULTILINE
)
UNITS = {"k": 1024, "m": 2**20, "g": 2**30, "t": 2**40}


BLOCK = 1 << 20  # VMFS-6's file block: a thin disk allocates whole blocks, and only written ones
ZERO_BLOCK = bytes(BLOCK)


def copy_sparse(source: Path, target: Path) -> None:
    """Copy the data regions only (SEEK_DATA/SEEK_HOLE), and of those only the blocks that hold
    something other than zeros: a thin copy (``-d thin``) of a disk written full of zeros is thin."""
    size = source.stat().st_size
    with open(source, "rb") as src, open(target, "wb") as dst:
        offset = 0
        while offset < size:
            try:
                start = os.lseek(src.fileno(), offset, os.SEEK_DATA)
            except OSError:  # only a hole is left
                break
            end = os.lseek(src.fileno(), start, os.SEEK_HOLE)
            src.seek(start)
            position = start
            while position < end:
                chunk = src.read(min(end - position, BLOCK))
                if chunk != ZERO_BLOCK[: len(chunk)]:
                    dst.seek(position)
                    dst.write(chunk)
                position += len(chunk)
            offset = end
        dst.truncate(size)


def clone(src_arg: str, dst_arg: str) -> None:
    src, dst = emu.host_path(src_arg), emu.host_path(dst_arg)
    if not src.is_file():
        emu.die("Failed to clone disk: The system cannot find the file specified (25).")
    if dst.exists():
        emu.die("Failed to clone disk: The file already exists (39).")
    text = src.read_text(encoding="utf-8")
    extents = list(EXTENT.finditer(text))
    if not extents:
        emu.die("Failed to clone disk: Not a supported disk format (some other error)")
    print("Destination disk format: VMFS thin-provisioned")
    print(f"Cloning disk '{src_arg}'...")
    sys.stdout.flush()
    stem = dst.name.removesuffix(".vmdk")
    new_text = text
    for i, extent in enumerate(extents):
        new_name = f"{stem}-flat.vmdk" if len(extents) == 1 else f"{stem}-s{i + 1:03d}.vmdk"
        source_file = src.parent / extent.group("file")
        target_file = dst.parent / new_name
        copy_sparse(source_file, target_file)
        new_text = new_text.replace(f'"{extent.group("file")}"', f'"{new_name}"', 1)
    new_text = re.sub(r"^CID=\w+", f"CID={random.getrandbits(32):08x}", new_text, flags=re.MULTILINE)
    new_text = re.sub(r"^ddb\.thinProvisioned\s*=.*$", "", new_text, flags=re.MULTILINE).rstrip("\n") + "\n"
    new_text += 'ddb.thinProvisioned = "1"\n'
    uuid = " ".join(f"{random.getrandbits(8):02x}" for _ in range(16))
    new_text = re.sub(r"^ddb\.uuid\s*=.*$", f'ddb.uuid = "{uuid}"', new_text, flags=re.MULTILINE)
    dst.write_text(new_text, encoding="utf-8")
    print("Clone: 100% done.")


def grow(size_arg: str, disk_arg: str) -> None:
    disk = emu.host_path(disk_arg)
    match = re.fullmatch(r"(\d+)([kKmMgGtT]?)", size_arg)
    if match is None or not disk.is_file():
        emu.die(f"Failed to extend disk: invalid size {size_arg!r} or no disk {disk_arg}")
    new_bytes = int(match.group(1)) * UNITS.get(match.group(2).lower(), 1024)
    text = disk.read_text(encoding="utf-8")
    extents = list(EXTENT.finditer(text))
    if len(extents) != 1:
        emu.die("Failed to extend disk: only single-extent disks are emulated")
    old_bytes = int(extents[0].group("sectors")) * 512
    if new_bytes < old_bytes:
        emu.die("Failed to extend the disk. The new size must be larger than the current size.")
    start, end = extents[0].span("sectors")
    # A thin extent grows as the guest writes; only the descriptor's size changes now.
    disk.write_text(text[:start] + str(new_bytes // 512) + text[end:], encoding="utf-8")
    update_registered_vm(disk_arg, new_bytes)


def update_registered_vm(disk_arg: str, new_bytes: int) -> None:
    from pyVmomi import vim

    si = emu.service_instance()
    ds_path = emu.datastore_path(disk_arg)
    for vm in emu.all_vms(si):
        for dev in vm.config.hardware.device:
            if isinstance(dev, vim.vm.device.VirtualDisk) and dev.backing.fileName == ds_path:
                dev.capacityInKB = new_bytes // 1024
                dev.capacityInBytes = new_bytes
                change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=dev)
                emu.wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[change])))


def delete(disk_arg: str) -> None:
    """``-U DISK``: the descriptor and every extent it names; a disk a registered VM uses is refused."""
    disk = emu.host_path(disk_arg)
    if not disk.is_file():
        emu.die("Failed to delete virtual disk: The system cannot find the file specified (25).")
    text = disk.read_text(encoding="utf-8")
    extents = [disk.parent / m.group("file") for m in EXTENT.finditer(text)]
    if not extents:
        emu.die("Failed to delete virtual disk: Not a supported disk format (some other error)")
    for extent in extents:
        extent.unlink(missing_ok=True)
    disk.unlink()


def main(argv: list[str]) -> None:
    emu.log_invocation("vmkfstools", argv)
    if len(argv) == 5 and argv[0] == "-i" and argv[3:] == ["-d", "thin"]:
        emu.inject("vmkfstools -i")
        clone(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "-U":
        emu.inject("vmkfstools -U")
        delete(argv[1])
    elif len(argv) == 3 and argv[0] == "-X":
        emu.inject("vmkfstools -X")
        grow(argv[1], argv[2])
    else:
        emu.die(
            "vmkfstools: unsupported arguments (the emulator knows -i SRC DST -d thin, -X SIZE DISK and -U DISK)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
