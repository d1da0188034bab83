"""``vm.create --blank``: an empty VM to install from an ISO, made through the vSphere API.

One ``Folder.CreateVM_Task`` makes everything: the VM's folder, its .vmx, and a new thin disk on
a PVSCSI controller (the host creates the disk file, ``fileOperation=create``), a VMXNET3 NIC
with a static MAC from VMware's manual range, and, with an ISO, a SATA CD-ROM backed by it and
connected at power-on. Firmware is EFI, as a current installer expects. The ISO is checked to
exist on its datastore before anything is made; a failure after the VM was made destroys it.

The SSH route (free-licensed hosts) is refused with ``not_supported_over_ssh`` before the job
is queued (:func:`refuse_over_ssh`) and again in the job, for a host whose route changed since.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ceso.backends.paths import datastore_path, random_static_mac, split_datastore_path
from ceso.backends.vmomi import vim
from ceso.errors import ConflictError, NotFoundError, OperationError
from ceso.jobs.cleanup import undo
from ceso.jobs.retry import retry_host
from ceso.operations.leftovers import JOB_MARKER, marked_vm, remove_leftovers
from ceso.plans import BlankVmSteps

if TYPE_CHECKING:
    from ceso.backends.api import ApiVmBackend
    from ceso.jobs.context import JobContext
    from ceso.vm.specs import CreateVm

__all__ = ["DEFAULT_GUEST_ID", "blank_config_spec", "refuse_over_ssh", "run_blank_create"]

DEFAULT_GUEST_ID = "ubuntu64Guest"
#: Device keys of the new devices (negative: the host assigns the real ones).
_SCSI, _SATA, _DISK, _NIC, _CDROM = -100, -101, -102, -103, -104


def refuse_over_ssh(route: str) -> None:
    """OperationError (``not_supported_over_ssh``) when the host's route is SSH."""
    if route == "ssh":
        raise OperationError(
            "vm create --blank is not done over SSH: the host's API cannot write (a free license); "
            "create the VM from a template instead",
            code="not_supported_over_ssh",
        )


def blank_config_spec(
    spec: CreateVm, *, datastore: str, network: str, mac: str, extra_config: dict[str, str]
) -> Any:
    """The ``VirtualMachineConfigSpec`` of blank VM ``spec.name`` in ``[datastore] NAME/``."""
    v = vim()
    dev = v.vm.device
    assert spec.memory_mb is not None and spec.disk_bytes is not None and spec.cpus is not None
    scsi = dev.ParaVirtualSCSIController(key=_SCSI, busNumber=0, sharedBus="noSharing")
    disk = dev.VirtualDisk(
        key=_DISK,
        controllerKey=_SCSI,
        unitNumber=0,
        capacityInKB=spec.disk_bytes // 1024,
        capacityInBytes=spec.disk_bytes,
        backing=dev.VirtualDisk.FlatVer2BackingInfo(
            fileName=datastore_path(datastore, ""), diskMode="persistent", thinProvisioned=True
        ),
    )
    nic = dev.VirtualVmxnet3(
        key=_NIC,
        addressType="manual",
        macAddress=mac,
        backing=dev.VirtualEthernetCard.NetworkBackingInfo(deviceName=network),
        connectable=dev.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True),
    )
    changes = [
        dev.VirtualDeviceSpec(operation="add", device=scsi),
        dev.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk),
        dev.VirtualDeviceSpec(operation="add", device=nic),
    ]
    if spec.iso is not None:
        sata = dev.VirtualAHCIController(key=_SATA, busNumber=0)
        cdrom = dev.VirtualCdrom(
            key=_CDROM,
            controllerKey=_SATA,
            unitNumber=0,
            backing=dev.VirtualCdrom.IsoBackingInfo(fileName=spec.iso),
            connectable=dev.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True),
        )
        changes += [
            dev.VirtualDeviceSpec(operation="add", device=sata),
            dev.VirtualDeviceSpec(operation="add", device=cdrom),
        ]
    return v.vm.ConfigSpec(
        name=spec.name,
        guestId=spec.guest_id or DEFAULT_GUEST_ID,
        numCPUs=spec.cpus,
        memoryMB=spec.memory_mb,
        firmware="efi",
        files=v.vm.FileInfo(vmPathName=datastore_path(datastore, "")),
        deviceChange=changes,
        extraConfig=[v.option.OptionValue(key=k, value=val) for k, val in extra_config.items()],
    )


def _choose_network(ops: ApiVmBackend, wanted: str | None) -> str:
    if wanted is not None:
        return ops.network(wanted)
    names = ops.networks()
    if not names:
        raise NotFoundError(f"host {ops.client.name} has no port group for the VM's NIC")
    return "VM Network" if "VM Network" in names else names[0]


def run_blank_create(ctx: JobContext, spec: CreateVm) -> dict[str, Any]:
    """Make blank VM ``spec.name``; return the job's result (name, datastore, .vmx, disk, MAC, power)."""
    from ceso.backends.routes import route_of

    refuse_over_ssh(route_of(ctx.runtime, ctx.job.host))
    ops = ctx.backend(require="api", what="vm create --blank")
    name = spec.name
    with ctx.step(BlankVmSteps.check_placement, progress=5, changes_host=False, details={"iso": spec.iso}):
        iso_ds = None if spec.iso is None else split_datastore_path(spec.iso)[0]
        datastore = ops.datastore(spec.datastore or iso_ds)
        network = _choose_network(ops, spec.network)
        if spec.iso is not None:
            ops.datastore(iso_ds)
            if not ops.path_exists(spec.iso):
                raise NotFoundError(f"no ISO {spec.iso} on host {ctx.job.host}")
    with ctx.locks(BlankVmSteps.lock, vms=[name], datastores=[datastore]):
        with ctx.step(BlankVmSteps.check_name, progress=8, changes_host=ctx.attempt > 1):
            if ctx.attempt > 1:
                remove_leftovers(ctx, ops, name=name, source_name=None)
            if ops.exists(name):
                raise ConflictError(f"a VM named {name!r} already exists on host {ctx.job.host}")
        with ctx.step(
            BlankVmSteps.create_vm, progress=60, details={"datastore": datastore, "network": network}
        ) as rec:
            mac = random_static_mac(ops.macs_in_use())
            config = blank_config_spec(
                spec, datastore=datastore, network=network, mac=mac, extra_config={JOB_MARKER: ctx.job.id}
            )

            def create(tried: int) -> Any:
                # Asked again after a lost answer: a VM carrying this job's marker is the one asked for.
                if tried > 1 and (found := marked_vm(ctx, ops, name)) is not None:
                    return found
                return ops.create_vm(config)

            vm = retry_host(ctx, BlankVmSteps.create_vm, create)
            rec.update(mac=mac)
        try:
            power_state = "poweredOff"
            if not spec.no_power_on:
                with ctx.step(BlankVmSteps.power_on, progress=90) as rec:

                    def power_on(tried: int) -> str:
                        if tried > 1 and ops.power_state(vm) == "poweredOn":
                            return "poweredOn"  # the lost answer's request was carried out
                        return ops.power_on(vm)

                    power_state = retry_host(ctx, BlankVmSteps.power_on, power_on)
                    rec.update(power_state=power_state)
            ctx.checkpoint()
        except BaseException as exc:
            undo(ctx, BlankVmSteps.clean_up, lambda: _destroy(ops, vm), cause=exc)
            raise
        ctx.beyond_cancel()  # a cancel from now on is too late: the VM stays, the job says so
        vmx = str(ops.props(vm, ["summary.config.vmPathName"]).get("summary.config.vmPathName"))
    return {
        "name": name,
        "host": ctx.job.host,
        "datastore": datastore,
        "vmx_path": vmx,
        "macs": [mac],
        "iso": spec.iso,
        "power_state": power_state,
    }


def _destroy(ops: ApiVmBackend, vm: Any) -> None:
    try:
        if ops.power_state(vm) != "poweredOff":
            ops.power_off(vm)
    finally:
        ops.destroy(vm)
