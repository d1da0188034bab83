"""Provisioning a new VM from a source VM's disks: the heart of ``vm.create`` and ``vm.clone``.

Standalone ESXi has no clone API, so a new VM is made by hand: make its
directory, copy each source disk on the host (thin; the bytes never pass
through the worker), create the VM with the source's hardware, a new BIOS
UUID, new MAC addresses and fresh cloud-init guestinfo (a new instance-id, so
the guest applies its new network config), grow its disk if asked, power it
on. A failure at any point removes what this job made, and says so in the
job's steps; a redelivered job first removes what its previous attempt left.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ceso.backends.guest import shut_down_or_power_off, wait_for_ip
from ceso.backends.paths import datastore_path, random_static_mac, split_datastore_path
from ceso.backends.protocol import CARRIED_BACKING_FIELDS, CARRIED_EXTRA_CONFIG, AnyBackend
from ceso.backends.vmomi import vim
from ceso.cloudinit import new_instance_id
from ceso.errors import CesoError, ConflictError, InvalidInputError, NotFoundError, TimeoutExpiredError
from ceso.jobs.cleanup import always, undo
from ceso.jobs.context import JobContext
from ceso.jobs.retry import retry_host
from ceso.jobs.task_progress import TaskProgress
from ceso.operations.leftovers import JOB_MARKER, clone_snapshot_name, left_off, marked_vm, remove_leftovers
from ceso.operations.provision_options import ProvisionOptions
from ceso.operations.reconcile import Found, completed_vm, is_fault
from ceso.plans import NewVmSteps

__all__ = ["JOB_MARKER", "ProvisionOptions", "provision"]

log = logging.getLogger(__name__)


@dataclass
class _Made:
    """What this job created so far, for cleanup."""

    directory: str | None = None
    vm: Any = None
    #: The directory's making was asked and stopped without an answer (a time limit in the call):
    #: it is this job's if it is there (the name's lock is held, "check name" found no VM of it).
    directory_unsure: bool = False


def _is_type(dev: Any, *names: str) -> bool:
    v = vim()
    return any(isinstance(dev, getattr(v.vm.device, n)) for n in names)


def _controller_kinds() -> tuple[str, ...]:
    return ("VirtualSCSIController", "VirtualSATAController", "VirtualNVMEController")


def build_config_spec(
    *,
    source: dict[str, Any],
    opts: ProvisionOptions,
    datastore: str,
    disk_paths: list[str],
    macs: list[str],
    extra_config: dict[str, str],
) -> Any:
    """The ConfigSpec of the new VM: the source's hardware with new disks, MACs, UUID and guestinfo.

    ``source`` is shaped as ``VmBackend.source_props``: of its devices this reads only the fields
    :mod:`ceso.esxi.source` promises (a new field read here must be added there).
    """
    v = vim()
    devices = source.get("config.hardware.device") or []
    changes: list[Any] = []
    key_map: dict[int, int] = {}
    for i, dev in enumerate(d for d in devices if _is_type(d, *_controller_kinds())):
        new = type(dev)(key=-(100 + i), busNumber=dev.busNumber)
        if _is_type(dev, "VirtualSCSIController"):
            new.sharedBus = dev.sharedBus or "noSharing"
        key_map[dev.key] = new.key
        changes.append(v.vm.device.VirtualDeviceSpec(operation="add", device=new))
    disks = [d for d in devices if _is_type(d, "VirtualDisk")]
    for i, (dev, path) in enumerate(zip(disks, disk_paths, strict=True)):
        changes.append(
            v.vm.device.VirtualDeviceSpec(
                operation="add",
                device=v.vm.device.VirtualDisk(
                    key=-(200 + i),
                    controllerKey=key_map.get(dev.controllerKey, dev.controllerKey),
                    unitNumber=dev.unitNumber,
                    capacityInKB=dev.capacityInKB,
                    backing=v.vm.device.VirtualDisk.FlatVer2BackingInfo(
                        fileName=path, diskMode="persistent", thinProvisioned=True
                    ),
                ),
            )
        )
    nics = [d for d in devices if _is_type(d, "VirtualEthernetCard")]
    for i, (dev, mac) in enumerate(zip(nics, macs, strict=True)):
        network = opts.network if (opts.network and i == 0) else getattr(dev.backing, "deviceName", None)
        slot = getattr(dev.slotInfo, "pciSlotNumber", None) if dev.slotInfo is not None else None
        connect = opts.connect_nics is None or i < opts.connect_nics
        changes.append(
            v.vm.device.VirtualDeviceSpec(
                operation="add",
                device=type(dev)(
                    key=-(300 + i),
                    addressType="manual",
                    macAddress=mac,
                    backing=v.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network),
                    connectable=v.vm.device.VirtualDevice.ConnectInfo(
                        startConnected=connect, allowGuestControl=connect, connected=connect
                    ),
                    # The guest names its interfaces by PCI slot (ens160, ens192): the same slot keeps
                    # the name its netplan or ifcfg file uses.
                    slotInfo=v.vm.device.VirtualDevice.PciBusSlotInfo(pciSlotNumber=slot) if slot else None,
                ),
            )
        )
    changes.extend(_carried_devices(devices, key_map))
    carried_extra = [
        v.option.OptionValue(key=o.key, value=o.value)
        for o in source.get("config.extraConfig") or []
        if o.key.lower() in {k.lower() for k in CARRIED_EXTRA_CONFIG}
    ]
    cpus = opts.cpus or source.get("config.hardware.numCPU")
    memory_mb = opts.memory_mb or source.get("config.hardware.memoryMB")
    return v.vm.ConfigSpec(
        name=opts.name,
        guestId=source.get("config.guestId"),
        numCPUs=cpus,
        memoryMB=memory_mb,
        **_carried_hardware(source, cpus=cpus, memory_mb=memory_mb),
        firmware=source.get("config.firmware"),
        bootOptions=_boot_options(source),
        version=source.get("config.version"),
        uuid=str(uuid.uuid4()),  # a new BIOS UUID: the guest must not look like its source
        files=v.vm.FileInfo(vmPathName=datastore_path(datastore, f"{opts.name}/{opts.name}.vmx")),
        deviceChange=changes,
        extraConfig=carried_extra
        + [v.option.OptionValue(key=k, value=val) for k, val in extra_config.items()],
    )


def _carried_devices(devices: list[Any], key_map: dict[int, int]) -> list[Any]:
    """The source's CD-ROMs and serial ports, disconnected, and its USB controllers, as device adds.

    CD-ROMs and serial ports keep their backing (ISO, host device, file, pipe,
    network URI) but do not connect at power-on: the backing belongs to the
    source (an installer ISO, its console log, its telnet port), and two VMs
    connected to one port or file clash. They are connected by hand.
    """
    v = vim()
    out: list[Any] = []
    kept = [d for d in devices if _is_type(d, "VirtualCdrom", "VirtualSerialPort")]
    for i, dev in enumerate(kept):
        new = type(dev)(
            key=-(400 + i),
            backing=_backing_copy(dev.backing),
            connectable=v.vm.device.VirtualDevice.ConnectInfo(
                startConnected=False, allowGuestControl=True, connected=False
            ),
        )
        if _is_type(dev, "VirtualCdrom"):
            new.controllerKey = key_map.get(dev.controllerKey, dev.controllerKey)
            new.unitNumber = dev.unitNumber
        else:
            new.yieldOnPoll = bool(dev.yieldOnPoll)
        out.append(new)
    for i, dev in enumerate(
        d for d in devices if _is_type(d, "VirtualUSBController", "VirtualUSBXHCIController")
    ):
        new = type(dev)(key=-(500 + i))
        if _is_type(dev, "VirtualUSBController"):
            new.ehciEnabled = bool(dev.ehciEnabled)
        out.append(new)
    return [v.vm.device.VirtualDeviceSpec(operation="add", device=d) for d in out]


def _carried_hardware(source: dict[str, Any], *, cpus: int | None, memory_mb: int | None) -> dict[str, Any]:
    """Cores per socket and the CPU and memory reservations of the source, where they still fit.

    Cores per socket are kept when they divide the new CPU count; a memory
    reservation is capped at the new memory size.
    """
    v = vim()
    out: dict[str, Any] = {}
    cores = source.get("config.hardware.numCoresPerSocket")
    if cores and cpus and cpus % cores == 0:
        out["numCoresPerSocket"] = cores
    if mem := source.get("config.memoryAllocation.reservation"):
        out["memoryAllocation"] = v.ResourceAllocationInfo(reservation=min(mem, memory_mb or mem))
    if cpu := source.get("config.cpuAllocation.reservation"):
        out["cpuAllocation"] = v.ResourceAllocationInfo(reservation=cpu)
    return out


def _backing_copy(backing: Any) -> Any:
    """A CD-ROM's or serial port's backing with only the fields :mod:`ceso.esxi.source` reads."""
    if backing is None:
        return None
    new = type(backing)()
    for name in CARRIED_BACKING_FIELDS:
        value = getattr(backing, name, None)
        if value is not None:
            setattr(new, name, value)
    return new


def _boot_options(source: dict[str, Any]) -> Any:
    """The source's Secure Boot setting for an EFI source (the property reads as a bool or as text)."""
    if source.get("config.firmware") != "efi":
        return None
    secure = str(source.get("config.bootOptions.efiSecureBootEnabled", "")).lower() == "true"
    return vim().vm.BootOptions(efiSecureBootEnabled=secure)


def nvram_path(vmx_path: str) -> str:
    """``[ds] dir/vm.vmx`` → ``[ds] dir/vm.nvram``: where a VM keeps its firmware's settings."""
    return vmx_path.removesuffix(".vmx") + ".nvram"


@contextmanager
def _cleanup_on_failure(
    ctx: JobContext, ops: AnyBackend, made: _Made, opts: ProvisionOptions
) -> Iterator[None]:
    """Remove what this job made if the body stops for any reason (failure, cancel, time limit) --
    unless a fault of the machinery (a lost answer, say) stopped a job whose VM is built: the
    runner then reconciles the record with the host (:mod:`ceso.operations.reconcile`)."""
    try:
        yield
    except BaseException as exc:
        if made.vm is not None and is_fault(exc) and _built(ctx, ops, opts):
            raise
        if made.vm is not None or made.directory is not None:
            undo(
                ctx,
                NewVmSteps.clean_up,
                functools.partial(_remove_made, ctx, ops, made, opts.name),
                cause=exc,
            )
        raise


def _built(ctx: JobContext, ops: AnyBackend, opts: ProvisionOptions) -> bool:
    try:
        return completed_vm(ctx, ops, opts).built
    except CesoError:
        return False  # the host cannot say: clean up (left pending if it cannot be reached)


def _remove_made(ctx: JobContext, ops: AnyBackend, made: _Made, name: str) -> None:
    vm = made.vm
    if vm is None and made.directory is not None:
        vm = marked_vm(ctx, ops, name)  # a create stopped without its answer (a time limit) made it
    if vm is not None:
        try:
            if ops.power_state(vm) != "poweredOff":
                ops.power_off(vm)
        finally:
            ops.destroy(vm)
    elif made.directory is not None and (not made.directory_unsure or ops.path_exists(made.directory)):
        ops.delete_path(made.directory)


def provision(
    ctx: JobContext,
    *,
    source_name: str,
    opts: ProvisionOptions,
    hot: bool = False,
    shutdown_source: bool = False,
    lock_source: bool = True,
) -> dict[str, Any]:
    """Make VM ``opts.name`` from ``source_name``'s disks and hardware; return the job result."""
    name = opts.name
    with ctx.step(NewVmSteps.inspect_source, progress=5, changes_host=False, details={"source": source_name}):
        # The backend of the route the host's record declares (ceso.backends.routes); its session is
        # opened here, so a host that does not answer yet is retried like the reads.
        ops, source_vm, source, datastore = retry_host(
            ctx, NewVmSteps.inspect_source, lambda _try: _inspect(ctx, source_name, opts)
        )
        disks = [d for d in source.get("config.hardware.device") or [] if _is_type(d, "VirtualDisk")]
        if not disks:
            raise InvalidInputError(f"source VM {source_name!r} has no disk to copy")
        if opts.disk_bytes is not None and opts.disk_bytes < disks[0].capacityInKB * 1024:
            raise InvalidInputError(
                f"--disk {opts.disk_bytes // 2**30}G is smaller than the source disk "
                f"({disks[0].capacityInKB // 2**20}G); disks can only grow"
            )
        power = str(source.get("runtime.powerState"))
        if power != "poweredOff" and not (hot or shutdown_source):
            raise ConflictError(
                f"source VM {source_name!r} is {power}: pass --shutdown-source or --hot, or power it off"
            )

    lock_vms = [name, source_name] if lock_source else [name]
    with ctx.locks(NewVmSteps.lock, vms=lock_vms, datastores=[datastore]):
        # A first attempt only looks; a redelivered one adopts the VM an earlier attempt finished
        # (its record may never have said so: ceso.operations.reconcile), or removes what it made.
        adopted = Found()
        with ctx.step(NewVmSteps.check_name, progress=8, changes_host=ctx.attempt > 1) as rec:
            if ctx.attempt > 1:
                adopted = retry_host(ctx, NewVmSteps.check_name, lambda _try: completed_vm(ctx, ops, opts))
                remove_leftovers(
                    ctx,
                    ops,
                    name=name,
                    source_name=source_name,
                    keep_vm=adopted.built,
                    power_source_on=adopted.built,  # no build follows to power it on
                )
                if adopted.built:
                    rec.update(adopted=True)
            if not adopted.built and retry_host(ctx, NewVmSteps.check_name, lambda _try: ops.exists(name)):
                raise ConflictError(f"a VM named {name!r} already exists on host {ctx.job.host}")
        made = _Made(vm=adopted.vm)
        if adopted.result is not None:
            result = adopted.result
            if adopted.complete:
                # A cancel that came while the VM was adopted removes it, as one during a build
                # would; one after this check is too late: the job ends succeeded and says so.
                with _cleanup_on_failure(ctx, ops, made, opts):
                    ctx.checkpoint()
                ctx.beyond_cancel()
                return result
        else:
            with _cleanup_on_failure(ctx, ops, made, opts):
                result = _build(
                    ctx,
                    ops,
                    made,
                    source_vm=source_vm,
                    source=source,
                    disks=disks,
                    opts=opts,
                    datastore=datastore,
                    hot=hot,
                    # A source an earlier attempt shut down and died before powering on was on: it is
                    # again after.
                    shutdown_source=shutdown_source
                    and (
                        power == "poweredOn"
                        or left_off(
                            ctx.earlier_steps, NewVmSteps.shut_down_source, NewVmSteps.power_source_back_on
                        )
                    ),
                )
    if opts.power_on and opts.wait_ip:
        # Outside the cleanup: the VM is complete; a guest slow to report its address is no
        # reason to destroy it. The job fails with the timeout and the VM stays for inspection.
        result["ip_addresses"] = _wait_for_ip(ctx, ops, made.vm, opts)
    return result


def _inspect(
    ctx: JobContext, source_name: str, opts: ProvisionOptions
) -> tuple[AnyBackend, Any, dict[str, Any], str]:
    """The host's backend, the source VM, its properties and the target datastore (checked); the
    network checked. Only reads."""
    ops = ctx.backend()
    source_vm = ops.find(source_name)
    source = ops.source_props(source_vm)  # API: one request parsed as XML (ceso.esxi.source)
    source_ds, _ = split_datastore_path(source["summary.config.vmPathName"])
    datastore = ops.datastore(opts.datastore or source_ds)
    if opts.network:
        ops.network(opts.network)
    return ops, source_vm, source, datastore


def _wait_for_ip(ctx: JobContext, ops: AnyBackend, vm: Any, opts: ProvisionOptions) -> list[str]:
    expected = [a.split("/")[0] for a in (opts.guest.ip, opts.guest.ip6) if a and a.lower() != "dhcp"]
    with ctx.step(NewVmSteps.wait_for_ip, progress=95, details={"expected": expected}):
        try:
            return wait_for_ip(ops, vm, expected=expected, timeout=opts.wait_ip_timeout_s)
        except TimeoutExpiredError as exc:
            raise TimeoutExpiredError(f"{exc.message}; VM {opts.name} was created and left running") from exc


def _make_directory(ctx: JobContext, ops: AnyBackend, made: _Made, directory: str) -> None:
    """The new VM's directory, recorded in ``made`` for the cleanup (as unsure if the call got no answer)."""
    with ctx.step(NewVmSteps.make_directory, progress=10, details={"path": directory}):

        def make(tried: int) -> None:
            # Asked again after a lost answer: the directory there now is this job's (the name's lock
            # is held and "check name" found no VM of the name).
            if tried > 1 and ops.path_exists(directory):
                return
            ops.make_directory(directory)

        try:
            retry_host(ctx, NewVmSteps.make_directory, make)
        except ConflictError:
            raise  # a directory of the name was there before: not this job's
        except BaseException:
            made.directory, made.directory_unsure = directory, True  # the host may have made it
            raise
        made.directory = directory


def _build(
    ctx: JobContext,
    ops: AnyBackend,
    made: _Made,
    *,
    source_vm: Any,
    source: dict[str, Any],
    disks: list[Any],
    opts: ProvisionOptions,
    datastore: str,
    hot: bool,
    shutdown_source: bool,
) -> dict[str, Any]:
    name = opts.name
    directory = datastore_path(datastore, name)
    disk_paths = [
        datastore_path(datastore, f"{name}/{name}{'' if i == 0 else f'_{i}'}.vmdk") for i in range(len(disks))
    ]
    _make_directory(ctx, ops, made, directory)
    with _source_quiet(ctx, ops, source_vm, hot=hot, shutdown=shutdown_source):
        for i, (disk, dest) in enumerate(zip(disks, disk_paths, strict=True)):
            start, end = 10 + int(50 * i / len(disks)), 10 + int(50 * (i + 1) / len(disks))
            with ctx.step(
                NewVmSteps.copy_disk,
                item=f"{i + 1}/{len(disks)}",
                progress=end,
                details={"source": disk.backing.fileName, "dest": dest},
            ):
                ops.copy_disk(
                    disk.backing.fileName, dest, on_progress=TaskProgress(ctx, start=start, end=end)
                )
    nic_count = sum(
        1 for d in source.get("config.hardware.device") or [] if _is_type(d, "VirtualEthernetCard")
    )
    with ctx.step(NewVmSteps.create_vm, progress=75) as rec:
        macs = []
        taken = ops.macs_in_use()
        for _ in range(nic_count):
            macs.append(random_static_mac(taken))
            taken.add(macs[-1])
        instance_id = new_instance_id()
        guestinfo = opts.guest.guestinfo(name, macs, instance_id=instance_id)
        extra = {**guestinfo, JOB_MARKER: ctx.job.id}
        spec = build_config_spec(
            source=source,
            opts=opts,
            datastore=datastore,
            disk_paths=disk_paths,
            macs=macs,
            extra_config=extra,
        )

        def create(tried: int) -> Any:
            # Asked again after a lost answer: a VM carrying this job's marker is the one asked for.
            if tried > 1 and (vm := marked_vm(ctx, ops, name)) is not None:
                return vm
            return ops.create_vm(spec)

        made.vm = retry_host(ctx, NewVmSteps.create_vm, create)
        rec.update(uuid=spec.uuid, macs=macs, instance_id=instance_id)
    if source.get("config.firmware") == "efi":
        # An EFI guest's boot entries live in its NVRAM: without them it may not boot. The
        # new VM has not run yet, so its own NVRAM (if the host made one) is replaced.
        nvram = nvram_path(source["summary.config.vmPathName"])
        with ctx.step(NewVmSteps.copy_nvram, progress=78, details={"source": nvram}) as rec:
            try:
                ops.copy_file(nvram, datastore_path(datastore, f"{name}/{name}.nvram"))
            except NotFoundError:
                rec.update(copied=False)  # a VM that never booted has none yet
    if opts.disk_bytes is not None and opts.disk_bytes > disks[0].capacityInKB * 1024:
        with ctx.step(NewVmSteps.grow_disk, progress=80, details={"capacity_bytes": opts.disk_bytes}):
            grown = opts.disk_bytes  # setting a capacity twice sets it once
            retry_host(ctx, NewVmSteps.grow_disk, lambda _try: _grow_first_disk(ops, made.vm, grown))
    power_state = "poweredOff"
    if opts.power_on:
        with ctx.step(NewVmSteps.power_on, progress=90) as rec:

            def power_on(tried: int) -> str:
                if tried > 1 and ops.power_state(made.vm) == "poweredOn":
                    return "poweredOn"  # the lost answer's request was carried out
                return ops.power_on(made.vm)

            power_state = retry_host(ctx, NewVmSteps.power_on, power_on)  # the state the host reported
            rec.update(power_state=power_state)
    # A cancel that came while the last step ran: the VM is removed here, not left by a job that
    # ends cancelled; one after this check is too late (succeeded, cancel_too_late).
    ctx.checkpoint()
    ctx.beyond_cancel()
    return {
        "name": name,
        "host": ctx.job.host,
        "uuid": spec.uuid,
        "macs": macs,
        "instance_id": instance_id,
        "datastore": datastore,
        "vmx_path": spec.files.vmPathName,
        "disks": disk_paths,
        "power_state": power_state,
        "ip_addresses": [],
    }


def _grow_first_disk(ops: AnyBackend, vm: Any, capacity_bytes: int) -> None:
    devices = ops.props(vm, ["config.hardware.device"]).get("config.hardware.device") or []
    disk = next(d for d in devices if _is_type(d, "VirtualDisk"))
    disk.capacityInKB = capacity_bytes // 1024
    disk.capacityInBytes = capacity_bytes
    v = vim()
    ops.reconfigure(
        vm,
        v.vm.ConfigSpec(deviceChange=[v.vm.device.VirtualDeviceSpec(operation="edit", device=disk)]),
        what="grow disk",
    )


@contextmanager
def _source_quiet(
    ctx: JobContext, ops: AnyBackend, source_vm: Any, *, hot: bool, shutdown: bool
) -> Iterator[None]:
    """Keep the source's disks still while they are copied.

    Hot: a snapshot without memory redirects writes to a delta while the base
    disks are copied; it is removed afterwards, always, even on failure or
    cancel. Shutdown: the guest is shut down and powered back on afterwards.
    Otherwise the source is already off and nothing is done.
    """
    if hot:
        with ctx.step(NewVmSteps.snapshot_source, progress=12):
            snapshot = ops.create_snapshot(
                source_vm,
                clone_snapshot_name(ctx.job.id),
                memory=False,
                quiesce=False,
                description=f"temporary snapshot of ceso job {ctx.job.id}",
            )
        with always(ctx, NewVmSteps.remove_source_snapshot, lambda: ops.remove_snapshot(snapshot)):
            yield
        return
    if shutdown:
        with ctx.step(NewVmSteps.shut_down_source, progress=12):
            shut_down_or_power_off(ops, source_vm, timeout=300)
        with always(ctx, NewVmSteps.power_source_back_on, lambda: ops.power_on(source_vm)):
            yield
        return
    yield
