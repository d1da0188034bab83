"""``backup.restore``: write a set's disks back to a datastore and build a new VM around them.

The new VM gets a new BIOS UUID, new MAC addresses and fresh cloud-init
guestinfo with a new instance-id (so the guest applies the requested network),
through :func:`ceso.operations.provision.build_config_spec`, like a clone, and
the hardware a clone carries that the set recorded (:mod:`ceso.backup.hardware`:
CD-ROMs and serial ports, disconnected, USB controllers, NIC PCI slots,
``disk.EnableUUID``, cores per socket, reservations, Secure Boot).

Order: read and check the manifest → check name, networks and free space
(refused before anything is written) → lock the name and a datastore slot →
make the directory → stream each disk file back (decrypt, decompress, hash
check as it goes) → create the VM → restore the NVRAM → power on. A failure
removes what this job made; a redelivered job first removes its earlier VM.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ceso.backends.paths import datastore_path, random_static_mac
from ceso.backends.vmomi import vim
from ceso.backup import hardware
from ceso.backup.datastore_files import DatastoreFiles, datastore_files
from ceso.backup.manifest import Manifest, read_manifest
from ceso.backup.progress import ByteProgress
from ceso.backup.rebuild import Point, file_bytes, read_chain
from ceso.backup.specs import RestoreBackup
from ceso.backup.thin_restore import WAY, WAY_DIRECT, disk_tops, stage_disks, staging
from ceso.backup.upload import upload_file
from ceso.cloudinit import new_instance_id
from ceso.errors import CesoError, ConflictError, NotFoundError
from ceso.jobs.cleanup import undo
from ceso.jobs.retry import retry_host
from ceso.operations.leftovers import JOB_MARKER, remove_vm_leftovers
from ceso.operations.provision import ProvisionOptions, build_config_spec
from ceso.plans import RestoreSteps

if TYPE_CHECKING:
    from ceso.backends.protocol import AnyBackend
    from ceso.backup.targets.base import Target
    from ceso.jobs.context import JobContext

__all__ = ["read_manifest", "restore", "run_restore", "source_of"]

log = logging.getLogger(__name__)


def _source_devices(config: dict[str, Any], disk_paths: list[str]) -> list[Any]:
    """pyVmomi devices rebuilt from the manifest's hardware summary (for build_config_spec), with the
    carried CD-ROMs, serial ports and USB controllers and the NICs' PCI slots it recorded."""
    dev = vim().vm.device
    devices: list[Any] = []
    for c in config["controllers"]:
        ctl = getattr(dev, c["type"])(key=c["key"], busNumber=c["bus"])
        if c.get("shared_bus"):
            ctl.sharedBus = c["shared_bus"]
        devices.append(ctl)
    for d, path in zip(config["disks"], disk_paths, strict=True):
        devices.append(
            dev.VirtualDisk(
                key=d["key"],
                controllerKey=d["controller_key"],
                unitNumber=d["unit"],
                capacityInKB=d["capacity_kb"],
                backing=dev.VirtualDisk.FlatVer2BackingInfo(fileName=path, diskMode="persistent"),
            )
        )
    for i, (n, slot) in enumerate(zip(config["nics"], hardware.nic_slots(config), strict=True)):
        devices.append(
            getattr(dev, n["type"])(
                key=4000 + i,
                backing=dev.VirtualEthernetCard.NetworkBackingInfo(deviceName=n["network"]),
                slotInfo=dev.VirtualDevice.PciBusSlotInfo(pciSlotNumber=slot) if slot else None,
            )
        )
    return devices + hardware.devices(config)


def source_of(config: dict[str, Any], disk_paths: list[str]) -> dict[str, Any]:
    """The manifest's ``vm_config`` as ``VmBackend.source_props`` shapes a clone's source (for build_config_spec)."""
    return {
        "config.hardware.device": _source_devices(config, disk_paths),
        "config.guestId": config.get("guest_id"),
        "config.hardware.numCPU": config.get("num_cpu"),
        "config.hardware.memoryMB": config.get("memory_mb"),
        "config.firmware": config.get("firmware"),
        "config.version": config.get("version"),
        **hardware.props(config),
    }


def _check(
    ctx: JobContext, ops: AnyBackend, manifest: Manifest, spec: RestoreBackup, name: str
) -> tuple[str, bool]:
    """Name free, datastore and networks present, enough free space; return the datastore and
    whether the disks are staged and copied thin (:mod:`ceso.backup.thin_restore`): always over
    SSH (the staged copy is sparse), on the API route when the datastore holds a staged copy too."""
    if ops.exists(name):
        raise ConflictError(f"a VM named {name!r} already exists on host {ctx.job.host}")
    if spec.datastore:
        datastore = ops.datastore(spec.datastore)
    else:  # the original's datastore if the host has it, else the first
        original_ds = manifest.vm_config["vmx_path"][1:].split("]", 1)[0]
        try:
            datastore = ops.datastore(original_ds)
        except NotFoundError:
            datastore = ops.datastore(None)
    for i, nic in enumerate(manifest.vm_config["nics"]):
        ops.network(spec.network if (spec.network and i == 0) else nic["network"])
    need = sum(file_bytes(f) for f in manifest.files if f.role in ("descriptor", "extent", "nvram"))
    free = getattr(ops, "free_space")(datastore)  # noqa: B009 - both routes have it; the protocol does not
    if need > free:
        raise CesoError(
            f"datastore {datastore} on host {ctx.job.host} has {free} bytes free; the restore needs {need}",
            code="insufficient_space",
            details={"needed_bytes": need, "free_bytes": free},
        )
    return datastore, ops.route == "ssh" or free >= 2 * need


def run_restore(ctx: JobContext) -> dict[str, Any]:
    """Run a ``backup.restore`` job (params: :class:`ceso.backup.specs.RestoreBackup` with the set's
    id and the new name filled in, and the set's target, path and manifest_sha256)."""
    return restore(ctx, RestoreBackup.from_job(ctx.params), ctx.params)


def restore(
    ctx: JobContext, spec: RestoreBackup, p: dict[str, Any], *, connect_nics: int | None = None
) -> dict[str, Any]:
    """Restore the set ``p`` names (``backup_id``, ``target``, ``path``, ``manifest_sha256``,
    ``no_power_on``) as ``spec`` asks, through the steps of :class:`~ceso.plans.RestoreSteps`.

    ``connect_nics``: how many of the new VM's first NICs connect (None: all); a restore drill
    (:mod:`ceso.backup.drill`) connects none, or the one on its isolated port group.
    """
    from ceso.backup.keys import load_key
    from ceso.backup.targets.registry import open_target

    # The host's route: the API (files over /folder) or, on a free-licensed host, SSH (SFTP,
    # vmkfstools, a .vmx registered with vim-cmd).
    target = open_target(ctx.runtime, p["target"])
    try:
        with ctx.step(RestoreSteps.read_manifest, progress=2, details={"backup_id": p["backup_id"]}):
            # The host's session is opened (the login) with the reads: tried again after a transient fault.
            ops, (manifest, _) = retry_host(
                ctx,
                RestoreSteps.read_manifest,
                lambda _try: (
                    ctx.backend(),
                    read_manifest(target, p["path"], expected_sha256=p.get("manifest_sha256")),
                ),
            )
            http = datastore_files(ops)
            enc = manifest.encryption
            key = load_key(ctx.runtime.secrets, expected_id=enc["key_id"]) if enc else None
            # An incremental needs its full and every point between: their manifests, checked.
            chain = read_chain(
                target,
                Point(manifest, p["path"], key),
                lambda key_id: load_key(ctx.runtime.secrets, expected_id=key_id),
            )
        if spec.in_place:
            from ceso.backup.inplace import restore_in_place

            return restore_in_place(ctx, ops, http, target, manifest, key, chain)
        assert spec.as_ is not None, "restore_request stores the new VM's name"
        name = spec.as_
        with ctx.step(RestoreSteps.check, progress=4) as rec:

            def check(_try: int) -> tuple[str, bool]:
                if ctx.attempt > 1:  # what an earlier attempt made (its marker): safe to ask again
                    remove_vm_leftovers(ctx, ops, name=name)
                return _check(ctx, ops, manifest, spec, name)

            datastore, thin = retry_host(ctx, RestoreSteps.check, check)
            rec.update(datastore=datastore, thin=thin)
        opts = ProvisionOptions(name=name, network=spec.network, guest=spec.guest, connect_nics=connect_nics)
        with ctx.locks(RestoreSteps.lock, vms=[name], datastores=[datastore]):
            return _build(ctx, ops, http, target, chain, datastore, thin, opts, p)
    finally:
        target.close()


def _build(
    ctx: JobContext,
    ops: AnyBackend,
    http: DatastoreFiles,
    target: Target,
    chain: list[Point],
    datastore: str,
    thin: bool,
    opts: ProvisionOptions,
    p: dict[str, Any],
) -> dict[str, Any]:
    manifest, key = chain[-1].manifest, chain[-1].key
    name = opts.name
    disk_files = [f for f in manifest.files if f.role in ("descriptor", "extent")]
    nvram = [f for f in manifest.files if f.role == "nvram"]
    progress = ByteProgress(ctx, sum(file_bytes(f) for f in disk_files + nvram), start=8, end=85)
    made: dict[str, Any] = {}
    directory = datastore_path(datastore, name)
    try:
        with ctx.step(RestoreSteps.make_directory, progress=6, details={"path": directory}):
            ops.make_directory(directory)
            made["directory"] = True
        tops = disk_tops(disk_files)
        if thin:  # a thin disk comes back thin: staged, then copied thin by the host
            with staging(ctx, ops, datastore, name) as staged:
                stage_disks(
                    ctx,
                    target,
                    http,
                    manifest,
                    disk_files,
                    p["path"],
                    datastore,
                    staged,
                    key,
                    progress,
                    chain,
                )
                for i in sorted(tops):
                    with ctx.step(
                        RestoreSteps.copy_disk_thin,
                        item=f"{i + 1}/{len(tops)} thin",
                        details={"disk": tops[i]},
                    ):
                        ops.copy_disk(
                            datastore_path(datastore, f"{staged}/{tops[i]}"),
                            datastore_path(datastore, f"{name}/{tops[i]}"),
                        )
        else:
            for f in disk_files:
                with ctx.step(RestoreSteps.restore_file, item=f.name, details={"size": file_bytes(f)}):
                    upload_file(
                        ctx,
                        target,
                        http,
                        manifest,
                        f,
                        p["path"],
                        (datastore, f"{name}/{f.name}"),
                        key,
                        progress,
                        chain,
                    )
        disk_paths = [datastore_path(datastore, f"{name}/{tops[i]}") for i in sorted(tops)]
        with ctx.step(RestoreSteps.create_vm, progress=88) as rec:
            taken = ops.macs_in_use()
            macs: list[str] = []
            for _ in manifest.vm_config["nics"]:
                macs.append(random_static_mac(taken))
                taken.add(macs[-1])
            instance_id = new_instance_id()
            source = source_of(manifest.vm_config, disk_paths)
            extra = {**opts.guest.guestinfo(name, macs, instance_id=instance_id), JOB_MARKER: ctx.job.id}
            spec = build_config_spec(
                source=source,
                opts=opts,
                datastore=datastore,
                disk_paths=disk_paths,
                macs=macs,
                extra_config=extra,
            )
            made["vm"] = ops.create_vm(spec)
            rec.update(uuid=spec.uuid, macs=macs, instance_id=instance_id)
        for f in nvram:
            with ctx.step(RestoreSteps.restore_nvram, progress=92):
                upload_file(
                    ctx,
                    target,
                    http,
                    manifest,
                    f,
                    p["path"],
                    (datastore, f"{name}/{name}.nvram"),
                    key,
                    progress,
                )
        if not p.get("no_power_on"):
            with ctx.step(RestoreSteps.power_on, progress=96):
                ops.power_on(made["vm"])
        ctx.checkpoint()  # a cancel during the last step removes the VM too
    except BaseException as exc:
        _undo(ctx, ops, made, directory, exc)
        raise
    return {
        "backup_id": manifest.id,
        "name": name,
        "host": ctx.job.host,
        "datastore": datastore,
        "uuid": spec.uuid,
        "macs": macs,
        "instance_id": instance_id,
        "source_vm": manifest.vm,
        "power_state": "poweredOff" if p.get("no_power_on") else "poweredOn",
        "restored_bytes": progress.done,
        "route": ops.route,
        "disks_written": WAY[ops.route] if thin else WAY_DIRECT,
    }


def _undo(
    ctx: JobContext, ops: AnyBackend, made: dict[str, Any], directory: str, cause: BaseException
) -> None:
    """Remove what a failed restore made, as a cleanup step; a failure of it is left pending
    (:func:`ceso.jobs.cleanup.undo`), ``cause`` stays the job's error."""
    if not made:
        return

    def remove() -> None:
        if made.get("vm") is not None:
            if ops.power_state(made["vm"]) != "poweredOff":
                ops.power_off(made["vm"])
            ops.destroy(made["vm"])
        else:
            ops.delete_path(directory)

    undo(ctx, RestoreSteps.clean_up, remove, cause=cause)
