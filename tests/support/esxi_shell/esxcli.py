"""``esxcli`` of an emulated ESXi host: the three tables ceso reads, in ESXi's table layout.

Columns are sized to their widest value with a dash line under the titles;
numbers are right-aligned (see docs/ssh-route.md for the real samples).
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import emulator as emu


def table(titles: list[str], rows: list[list[str]], right: set[int]) -> None:
    widths = [max([len(t)] + [len(r[i]) for r in rows]) for i, t in enumerate(titles)]

    def cell(i: int, value: str) -> str:
        return value.rjust(widths[i]) if i in right else value.ljust(widths[i])

    print(
        "  ".join(cell(i, t) if i not in right else t.rjust(widths[i]) for i, t in enumerate(titles)).rstrip()
    )
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell(i, v) for i, v in enumerate(row)).rstrip())


def fake_uuid(name: str) -> str:
    h = hashlib.sha256(name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:16]}-{h[16:20]}-{h[20:32]}"


def filesystems(si: Any) -> None:
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
    try:
        stores = [(ds.summary.name, ds.summary.capacity, ds.summary.freeSpace) for ds in view.view]
    finally:
        view.DestroyView()
    rows = [
        [f"/vmfs/volumes/{fake_uuid(n)}", n, fake_uuid(n), "true", "VMFS-6", str(c), str(f)]
        for n, c, f in stores
    ]
    for uuid in emu.config().get("unnamed_volumes", []):  # a VMFS volume whose name the host lost
        rows.append([f"/vmfs/volumes/{uuid}", "", uuid, "true", "VMFS-6", "53418655744", "51922534400"])
    boot = fake_uuid("bootbank")
    rows.append([f"/vmfs/volumes/{boot}", "", boot, "true", "vfat", "4293591040", "4251451392"])
    table(["Mount Point", "Volume Name", "UUID", "Mounted", "Type", "Size", "Free"], rows, right={3, 5, 6})


def ipv4() -> None:
    rows = [["vmk0", "127.0.0.1", "255.0.0.0", "127.255.255.255", "STATIC", "0.0.0.0", "false"]]
    table(
        ["Name", "IPv4 Address", "IPv4 Netmask", "IPv4 Broadcast", "Address Type", "Gateway", "DHCP DNS"],
        rows,
        right={6},
    )


def portgroups(si: Any) -> None:
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Network], True)
    try:
        rows = [[net.name, "vSwitch0", str(len(net.vm)), "0"] for net in view.view]
    finally:
        view.DestroyView()
    table(["Name", "Virtual Switch", "Active Clients", "VLAN ID"], rows, right={2, 3})


def main(argv: list[str]) -> None:
    emu.log_invocation("esxcli", argv)
    command = " ".join(argv)
    emu.inject(f"esxcli {command}")
    if command == "storage filesystem list":
        filesystems(emu.service_instance())
    elif command == "network ip interface ipv4 get":
        ipv4()
    elif command == "network vswitch standard portgroup list":
        portgroups(emu.service_instance())
    else:
        emu.die(f"Error: Unknown command or namespace {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
