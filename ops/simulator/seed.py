"""Create VMs on a simulated ESXi host (for the quick start and benchmarks).

Usage: python ops/simulator/seed.py URL [--count N] [--prefix NAME] [--template]

Each VM gets 2 vCPUs, 2 GiB, one thin 16 GiB disk and one vmxnet3 NIC on
"VM Network", like a small Ubuntu guest. Talks to the simulator directly with
pyVmomi (the simulator accepts any user and password).
"""

from __future__ import annotations

import argparse
import ssl
from typing import Any

import pyVmomi
from pyVim import connect

vim: Any = pyVmomi.vim


def vm_spec(name: str, datastore: str) -> Any:
    disk = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        fileOperation="create",
        device=vim.vm.device.VirtualDisk(
            key=-2,
            controllerKey=-1,
            unitNumber=0,
            capacityInKB=16 * 1024 * 1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", thinProvisioned=True),
        ),
    )
    scsi = vim.vm.device.VirtualDeviceSpec(
        operation="add", device=vim.vm.device.ParaVirtualSCSIController(key=-1, busNumber=0, sharedBus="noSharing")
    )
    nic = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualVmxnet3(
            key=-3,
            addressType="generated",
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network"),
        ),
    )
    return vim.vm.ConfigSpec(
        name=name,
        guestId="ubuntu64Guest",
        numCPUs=2,
        memoryMB=2048,
        files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"),
        deviceChange=[scsi, disk, nic],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--prefix", default="ubuntu")
    args = parser.parse_args()
    scheme, rest = args.url.split("://", 1)
    hostport = rest.split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    si = connect.SmartConnect(
        protocol=scheme, host=host, port=int(port), user="root", pwd="seed",
        sslContext=ssl._create_unverified_context() if scheme == "https" else None,  # simulator only
    )
    content = si.RetrieveContent()
    datacenter = content.rootFolder.childEntity[0]
    host_obj = datacenter.hostFolder.childEntity[0]
    pool = host_obj.resourcePool
    datastore = host_obj.host[0].datastore[0].name
    for i in range(args.count):
        name = f"{args.prefix}-{i:04d}" if args.count > 1 else args.prefix
        task = datacenter.vmFolder.CreateVM_Task(config=vm_spec(name, datastore), pool=pool)
        if task.info.state != "success":
            raise SystemExit(f"creating {name} failed: {task.info.error}")
    connect.Disconnect(si)
    print(f"created {args.count} VMs on {args.url}")


if __name__ == "__main__":
    main()
