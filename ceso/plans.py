"""What a job does, step by step, by kind and route: declared once, run by the worker, shown by ``--dry-run``.

Each step of a job is a :class:`Step` here: the name it is recorded under, and what it asks of
the host on each route, named as ``job status`` shows the calls (vSphere methods on the API
route; ESXi shell commands and SFTP on the SSH route). A handler runs a step by passing it to
``ctx.step(...)`` (or ``ctx.locks``, ``ctx.cleanup_step``, :func:`ceso.jobs.cleanup.always`),
so the name it records is this one; :func:`plan_for` renders the same steps for a dry run, in
the CLI (in-process) and in cesod alike, for the route the job's host would take now
(:func:`ceso.backends.routes.route_of`). A test runs every kind on both routes and on the fake
backend and holds what each job recorded to its plan (tests/ssh/test_steps_follow_plans.py).

The steps of a kind are the :class:`Step` attributes of its class below (a namespace, in the
order the job runs them). A kind whose steps name no shell command reads through the API on
every host (``host.ping``).

This module imports nothing of ceso but the spec base, so a dry run stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ceso.runtime import Runtime
    from ceso.specs import Spec

__all__ = [
    "API",
    "PENDING_CLEANUP",
    "PLANS",
    "REFUSED_OVER_SSH",
    "SSH",
    "VARIANTS",
    "Step",
    "dry_run_plan",
    "plan_for",
    "plan_of",
    "steps_of",
]

API, SSH = "api", "ssh"

#: What a dry run adds to a ``retried`` step's calls (:class:`Step`).
_RETRIED = "; retried after a transient host fault"

_SSH_FIRST = "SSH route: the host's API cannot write (or route: ssh); every step runs in the ESXi shell"


@dataclass(frozen=True)
class Step:
    """One step of a job: recorded as ``name``; asks ``api`` of the host on the API route and
    ``ssh`` on the SSH route (None: the same as on the API, e.g. a lock or a catalog write).

    ``when`` says in words when the step runs if not always; ``only(spec)`` is False for a spec
    whose dry run leaves the step out (another power action, a clone without ``--hot``). A step
    with ``each`` runs once per item and is recorded as ``"<name> <item>"`` (``copy disk 1/2``).
    A ``cleanup`` step undoes what the job made and runs on failure, cancel and time limit. A step
    runs on the ``routes`` it names only (an OVF lease exists on the API alone). A ``retried`` step
    is safe to repeat (a read, or a write whose repeat first checks the host): its host calls are
    tried again with backoff after a transient host fault (:func:`ceso.jobs.retry.retry_host`, which
    refuses any other step), each failed try recorded under the step's ``retries``.
    """

    name: str
    api: str
    ssh: str | None = None
    when: str = ""
    only: Callable[[Any], bool] | None = None
    each: bool = False
    cleanup: bool = False
    routes: tuple[str, ...] = ("api", "ssh")
    retried: bool = False

    def calls(self, route: str) -> str:
        """What the step asks of the host on ``route`` (and whether a transient fault is retried)."""
        calls = self.ssh if route == SSH and self.ssh is not None else self.api
        return calls + _RETRIED if self.retried else calls

    def line(self, route: str) -> str:
        """The step as a dry run shows it."""
        when = f" ({self.when})" if self.when else ""
        return f"{self.name}{when}: {self.calls(route)}"

    def label(self, item: str | None = None) -> str:
        """The name the step is recorded under; ``item`` (e.g. ``1/2``) is given for an ``each`` step only."""
        if self.each != (item is not None):
            raise TypeError(f"step {self.name!r} {'needs' if self.each else 'takes no'} item")
        return self.name if item is None else f"{self.name} {item}"

    def matches(self, recorded: str) -> bool:
        """True if ``recorded`` (a step's recorded name) is this step."""
        return recorded == self.name or (self.each and recorded.startswith(f"{self.name} "))

    def ran_in(self, steps: Sequence[dict[str, Any]]) -> bool:
        """True if one of ``steps`` (recorded records) is this step."""
        return any(self.matches(str(s.get("name"))) for s in steps)


def steps_of(kind: type) -> tuple[Step, ...]:
    """The steps a kind's class declares, in order."""
    return tuple(v for v in vars(kind).values() if isinstance(v, Step))


def _flag(name: str) -> Callable[[Any], bool]:
    return lambda spec: bool(getattr(spec, name, False))


def _action(action: str) -> Callable[[Any], bool]:
    return lambda spec: getattr(spec, "action", None) == action


def _recovery(_spec: Any) -> bool:
    """Recovery steps (a job out of attempts, a pending cleanup) are declared, never planned."""
    return False


_RECONCILE_WHEN = "after a fault of the broker, SQL, a lock or the host's connection, once the host was asked"


def _reconcile(reads: str, effect: str) -> Step:
    """A kind's "reconcile with host" step: ``reads`` what the host has now; the job succeeds if
    ``effect`` is there (:mod:`ceso.operations.reconcile`), else fails with the fault."""
    return Step(
        "reconcile with host",
        f"{reads}: {effect} makes the job succeed with the host's result; else it fails with the fault",
        when=_RECONCILE_WHEN,
        only=_recovery,
    )


_LEFTOVERS = Step(
    "remove leftovers",
    "VirtualMachine.PowerOffVM_Task and VirtualMachine.Destroy_Task of the VM this job made (or "
    "FileManager.DeleteDatastoreFile_Task of its directory); VirtualMachineSnapshot.RemoveSnapshot_Task "
    "of a hot clone's snapshot; VirtualMachine.PowerOnVM_Task of a source an attempt shut down",
    "vim-cmd vmsvc/power.off and vim-cmd vmsvc/destroy of the VM this job made (or sftp.remove_tree "
    "of its directory); vim-cmd vmsvc/snapshot.remove of a hot clone's snapshot; vim-cmd "
    "vmsvc/power.on of a source an attempt shut down",
    when="when the job runs out of attempts",
    only=_recovery,
    cleanup=True,
)
PENDING_CLEANUP = Step(
    "pending cleanup",
    "the kind's cleanup steps again, run by a worker of the host until they succeed",
    when="after a cleanup step failed",
    only=_recovery,
    cleanup=True,
)


# -- host --------------------------------------------------------------------------------------
class HostPingSteps:
    """``host.ping`` (:mod:`ceso.operations.host_ping`): the API reads on the SSH route too."""

    login = Step("login", "SessionManager.Login (pooled session)", retried=True)
    read_time = Step("read host time", "ServiceInstance.CurrentTime", retried=True)


class SleepSteps:
    """``test.sleep`` (:mod:`ceso.operations.test_sleep`): asks nothing of the host."""

    sleep = Step("sleep", "nothing asked of the host", each=True)


# -- a new VM: vm.create and vm.clone ------------------------------------------------------------


class NewVmSteps:
    """``vm.create`` from a template and ``vm.clone`` (:mod:`ceso.operations.provision`); a blank
    ``vm.create`` runs :class:`BlankVmSteps`."""

    inspect_source = Step(
        "inspect source",
        "read the source's hardware, datastore and network (the template, for vm create)",
        "vim-cmd vmsvc/getallvms; sftp.read of the source's .vmx and disk descriptors; "
        "esxcli storage filesystem list",
        retried=True,
    )
    lock = Step("lock", "the new VM name (and the source, for vm clone) and a slot on the datastore")
    check_name = Step(
        "check name",
        "refuse a name in use; a redelivered attempt adopts the VM an earlier one finished (this "
        "job's marker, read back complete), else first removes what an earlier one made "
        "(VirtualMachine.Destroy_Task, FileManager.DeleteDatastoreFile_Task, "
        "VirtualMachineSnapshot.RemoveSnapshot_Task)",
        "refuse a name in use; a redelivered attempt adopts the VM an earlier one finished (this "
        "job's marker, read back complete), else first removes what an earlier one made "
        "(vim-cmd vmsvc/destroy, sftp.remove_tree, vim-cmd vmsvc/snapshot.remove)",
        retried=True,
    )
    make_directory = Step(
        "make directory",
        "FileManager.MakeDirectory [ds] NAME",
        "sftp.mkdir /vmfs/volumes/DS/NAME",
        retried=True,
    )
    snapshot_source = Step(
        "snapshot source",
        "VirtualMachine.CreateSnapshot_Task on the source (no memory)",
        "vim-cmd vmsvc/snapshot.create of the source (no memory)",
        when="with --hot",
        only=_flag("hot"),
    )
    shut_down_source = Step(
        "shut down source",
        "VirtualMachine.ShutdownGuest, VirtualMachine.PowerOffVM_Task if the guest does not stop",
        "vim-cmd vmsvc/power.shutdown, vim-cmd vmsvc/power.off if the guest does not stop",
        when="with --shutdown-source, a running source",
        only=_flag("shutdown_source"),
    )
    copy_disk = Step(
        "copy disk",
        "VirtualDiskManager.CopyVirtualDisk_Task, thin, on the host",
        "vmkfstools -i SRC DST -d thin (the bytes stay on the host)",
        when="each source disk",
        each=True,
    )
    remove_source_snapshot = Step(
        "remove source snapshot",
        "VirtualMachineSnapshot.RemoveSnapshot_Task",
        "vim-cmd vmsvc/snapshot.remove",
        when="with --hot, always",
        only=_flag("hot"),
        cleanup=True,
    )
    power_source_back_on = Step(
        "power source back on",
        "VirtualMachine.PowerOnVM_Task",
        "vim-cmd vmsvc/power.on",
        when="with --shutdown-source, always",
        only=_flag("shutdown_source"),
        cleanup=True,
    )
    create_vm = Step(
        "create VM",
        "Folder.CreateVM_Task with the source's hardware, a new BIOS UUID, new MACs, guestinfo and "
        "this job's marker",
        "sftp.write of a complete NAME.vmx (new uuid.bios, new static MACs, guestinfo, this job's "
        "marker), vim-cmd solo/registervm, vim-cmd vmsvc/message",
        retried=True,
    )
    copy_nvram = Step(
        "copy NVRAM",
        "FileManager.CopyDatastoreFile_Task of the source's NVRAM over the new VM's",
        "sftp.read and sftp.write of the source's NAME.nvram over the new VM's",
        when="EFI sources: the boot entries",
    )
    grow_disk = Step(
        "grow disk",
        "VirtualMachine.ReconfigVM_Task",
        "vmkfstools -X SIZE of the first disk",
        when="with --disk larger than the source's",
        only=lambda spec: getattr(spec, "disk", None) is not None,
        retried=True,
    )
    power_on = Step(
        "power on",
        "VirtualMachine.PowerOnVM_Task",
        'vim-cmd vmsvc/power.on, answering "I copied it" (vim-cmd vmsvc/message) if ESXi asks',
        when="unless --no-power-on",
        only=lambda spec: not getattr(spec, "no_power_on", False),
        retried=True,
    )
    wait_for_ip = Step(
        "wait for guest IP",
        "read the guest's addresses until they show",
        "vim-cmd vmsvc/get.guest until the addresses show",
        when="with --wait-ip",
        only=_flag("wait_ip"),
    )
    clean_up = Step(
        "clean up after failure",
        "VirtualMachine.PowerOffVM_Task and VirtualMachine.Destroy_Task of the new VM, or "
        "FileManager.DeleteDatastoreFile_Task of its directory",
        "vim-cmd vmsvc/power.off and vim-cmd vmsvc/destroy of the new VM, or sftp.remove_tree of its directory",
        when="on failure, cancel or time limit",
        cleanup=True,
    )
    reconcile_with_host = Step(
        "reconcile with host",
        "read back the VM of this job's marker (disks, size, power, NVRAM, guest addresses): a "
        "complete one makes the job succeed with the host's result; else the cleanup runs",
        "vim-cmd vmsvc/getallvms and vim-cmd vmsvc/get.config of the VM of this job's marker (disks, "
        "size, power, guest addresses): a complete one makes the job succeed with the host's result; "
        "else the cleanup runs",
        when="after a fault of the broker, SQL, a lock or the host's connection, once the directory was made",
        only=_recovery,
    )
    remove_leftovers = _LEFTOVERS
    pending_cleanup = PENDING_CLEANUP


class BlankVmSteps:
    """``vm.create --blank`` (:mod:`ceso.operations.vm_blank`): one ``Folder.CreateVM_Task`` makes
    the VM, its folder and its new disk; on the API route only (:data:`REFUSED_OVER_SSH`)."""

    check_placement = Step(
        "check placement",
        "read the datastore and the network; HostDatastoreBrowser.SearchDatastore_Task: the ISO exists "
        "(with --iso)",
        routes=("api",),
    )
    lock = Step("lock", "the new VM name and a slot on the datastore", routes=("api",))
    check_name = Step(
        "check name",
        "refuse a name in use; a retried attempt first removes what an earlier one made "
        "(VirtualMachine.PowerOffVM_Task, VirtualMachine.Destroy_Task)",
        routes=("api",),
    )
    create_vm = Step(
        "create VM",
        "Folder.CreateVM_Task: EFI, a new thin disk of --disk on a PVSCSI controller, a VMXNET3 NIC "
        "with a new static MAC, a SATA CD-ROM with the ISO connected at power-on (with --iso), this "
        "job's marker",
        routes=("api",),
        retried=True,
    )
    power_on = Step(
        "power on",
        "VirtualMachine.PowerOnVM_Task",
        when="unless --no-power-on",
        only=lambda spec: not getattr(spec, "no_power_on", False),
        routes=("api",),
        retried=True,
    )
    clean_up = Step(
        "clean up after failure",
        "VirtualMachine.PowerOffVM_Task and VirtualMachine.Destroy_Task of the new VM",
        when="on failure, cancel or time limit",
        cleanup=True,
        routes=("api",),
    )
    remove_leftovers = _LEFTOVERS
    pending_cleanup = PENDING_CLEANUP


#: What a dry run of a kind refused on the SSH route shows there instead of steps, by class.
REFUSED_OVER_SSH: dict[type, str] = {
    BlankVmSteps: "refused: a blank VM is not made over SSH (not_supported_over_ssh)",
}


# -- changes to a VM ---------------------------------------------------------------------------
_LOCK_VM = "the VM"
_CHECK = "find the VM again, read its state, refuse a template"


class PowerSteps:
    """``vm.power`` (:mod:`ceso.operations.vm_power`): one of the action steps runs."""

    lock = Step("lock", _LOCK_VM)
    check = Step("check", f"{_CHECK}; nothing to do if it is already in that state", retried=True)
    power_on = Step(
        "power on",
        "VirtualMachine.PowerOnVM_Task",
        'vim-cmd vmsvc/power.on, answering "I copied it" (vim-cmd vmsvc/message) if ESXi asks',
        only=_action("on"),
        retried=True,
    )
    power_off = Step(
        "power off",
        "VirtualMachine.PowerOffVM_Task",
        "vim-cmd vmsvc/power.off",
        only=_action("off"),
        retried=True,
    )
    reset = Step(
        "reset",
        "VirtualMachine.ResetVM_Task (a powered-on VM)",
        "vim-cmd vmsvc/power.reset",
        only=_action("reset"),
    )
    guest_reboot = Step(
        "guest reboot",
        "VirtualMachine.RebootGuest (needs VMware Tools)",
        "vim-cmd vmsvc/power.reboot (needs VMware Tools)",
        only=_action("reboot"),
    )
    guest_shutdown = Step(
        "guest shutdown",
        "VirtualMachine.ShutdownGuest, then wait for poweredOff up to --timeout-guest",
        "vim-cmd vmsvc/power.shutdown, then wait for poweredOff up to --timeout-guest",
        only=_action("shutdown"),
        retried=True,
    )
    power_off_fallback = Step(
        "power off (fallback)",
        "VirtualMachine.PowerOffVM_Task",
        "vim-cmd vmsvc/power.off",
        when="with --force, if the guest did not stop",
        only=lambda spec: getattr(spec, "action", None) == "shutdown" and getattr(spec, "force", False),
        retried=True,
    )
    read_power_state = Step(
        "read power state", "read the power state", "vim-cmd vmsvc/power.getstate", retried=True
    )
    reconcile_with_host = _reconcile(
        "VirtualMachine runtime.powerState (vim-cmd vmsvc/power.getstate over SSH)",
        "the state on, off or shutdown leads to",
    )


class DeleteSteps:
    """``vm.delete`` (:mod:`ceso.operations.vm_delete`)."""

    inspect = Step("inspect", "find the VM and its datastore", "vim-cmd vmsvc/getallvms", retried=True)
    lock = Step("lock", "the VM and a slot on its datastore")
    check = Step(
        "check",
        f"{_CHECK}, a protected VM, a VM with another job in flight, a running VM without --force",
        retried=True,
    )
    power_off = Step(
        "power off",
        "VirtualMachine.PowerOffVM_Task",
        "vim-cmd vmsvc/power.off",
        when="with --force, a running VM",
        only=_flag("force"),
        retried=True,
    )
    destroy = Step(
        "destroy",
        "VirtualMachine.Destroy_Task: unregister the VM and delete its files (.vmx, disks, logs, nvram)",
        "vim-cmd vmsvc/destroy: unregister the VM and delete its files",
        retried=True,
    )
    check_folder = Step(
        "check folder",
        "HostDatastoreBrowser.SearchDatastore_Task: report whether the VM's folder is gone",
        "sftp.stat of the VM's folder: report whether it is gone",
        retried=True,
    )
    reconcile_with_host = _reconcile(
        "look the VM up by name and BIOS UUID (vim-cmd vmsvc/getallvms over SSH)", "no such VM registered"
    )


class ReconfigureSteps:
    """``vm.reconfigure`` (:mod:`ceso.operations.vm_reconfigure`); the SSH route can only grow disks."""

    lock = Step("lock", _LOCK_VM)
    plan = Step(
        "plan",
        "read the VM's hardware again and plan every change; "
        "HostDatastoreBrowser.SearchDatastore_Task: the ISO exists (with --iso)",
        "read the VM's .vmx again and plan every change (only disks can grow over SSH)",
        retried=True,
    )
    reconfigure = Step(
        "reconfigure",
        "VirtualMachine.ReconfigVM_Task: one task with every change (CPUs, memory, disks, NIC, CD-ROM)",
        "vmkfstools -X SIZE for each disk that grows",
        when="unless nothing changes",
        retried=True,
    )
    read_back = Step("read back", "read the VM's hardware", "sftp.read of the VM's .vmx", retried=True)
    reconcile_with_host = _reconcile(
        "read the VM's hardware and plan again (the .vmx over SSH)", "nothing left to change"
    )


_FIND_SNAPSHOT = f"{_CHECK}; find the one snapshot of that name (refuse an ambiguous name)"


class SnapshotCreateSteps:
    """``vm.snapshot.create`` (:mod:`ceso.operations.vm_snapshot_create`)."""

    lock = Step("lock", _LOCK_VM)
    check = Step("check", f"{_CHECK}; refuse a snapshot name it already has", retried=True)
    create = Step(
        "create snapshot",
        "VirtualMachine.CreateSnapshot_Task (memory and quiesce as asked)",
        "vim-cmd vmsvc/snapshot.create VMID NAME DESCRIPTION MEMORY QUIESCE",
        retried=True,
    )
    read_back = Step("read back", "read the VM's snapshots", "vim-cmd vmsvc/snapshot.get", retried=True)
    reconcile_with_host = _reconcile(
        "read the VM's snapshots (vim-cmd vmsvc/snapshot.get over SSH)", "one snapshot of the job's name"
    )


class SnapshotRevertSteps:
    """``vm.snapshot.revert`` (:mod:`ceso.operations.vm_snapshot_revert`)."""

    lock = Step("lock", _LOCK_VM)
    check = Step("check", _FIND_SNAPSHOT, retried=True)
    revert = Step(
        "revert",
        "VirtualMachineSnapshot.RevertToSnapshot_Task",
        "vim-cmd vmsvc/snapshot.revert VMID SNAPSHOT-ID 0",
        retried=True,
    )
    read_back = Step("read back", "read the power state", "vim-cmd vmsvc/power.getstate", retried=True)


class SnapshotDeleteSteps:
    """``vm.snapshot.delete`` (:mod:`ceso.operations.vm_snapshot_delete`)."""

    lock = Step("lock", _LOCK_VM)
    check = Step("check", _FIND_SNAPSHOT, retried=True)
    remove = Step(
        "remove snapshot",
        "VirtualMachineSnapshot.RemoveSnapshot_Task (removeChildren with --children)",
        "vim-cmd vmsvc/snapshot.remove VMID SNAPSHOT-ID (--children is refused over SSH)",
        retried=True,
    )
    read_back = Step("read back", "read the VM's snapshots", "vim-cmd vmsvc/snapshot.get", retried=True)
    reconcile_with_host = _reconcile(
        "read the VM's snapshots (vim-cmd vmsvc/snapshot.get over SSH)", "the snapshot's id gone"
    )


# -- backups -----------------------------------------------------------------------------------
class BackupSteps:
    """``backup.create`` (:mod:`ceso.backup.create`, :mod:`ceso.backup.quiesce`): files read over the
    datastore's HTTP access on the API route, with ``cat`` over SSH on the SSH route."""

    inspect = Step(
        "inspect VM",
        "read the VM's files, disks and power state",
        "vim-cmd vmsvc/getallvms; sftp.read of the .vmx; vim-cmd vmsvc/get.guest (are Tools running?)",
        retried=True,
    )
    lock = Step("lock", _LOCK_VM)
    target_slot = Step("target slot", "a slot of the target (backups.target_concurrency)")
    catalog_pending = Step(
        "catalog pending", "catalog the set as pending; delete what an earlier attempt left"
    )
    choose_parent = Step(
        "choose parent",
        "read the catalog and the target for the last completed set of the VM to build on "
        "(a full after full_every incrementals, or when none can be built on)",
        when="with --incremental",
        only=_flag("incremental"),
    )
    remove_leftover_snapshot = Step(
        "remove leftover snapshot",
        "VirtualMachineSnapshot.RemoveSnapshot_Task of this job's snapshot",
        "vim-cmd vmsvc/snapshot.remove of this job's snapshot",
        when="left by an earlier attempt",
        cleanup=True,
    )
    copy_config = Step(
        "copy",
        "stream the .vmx and .nvram over /folder (sha256, compression, encryption) to the target",
        "stream the .vmx and .nvram with `cat /vmfs/volumes/DS/VM/FILE` over SSH (sha256, compression, "
        "encryption) to the target",
        each=True,
    )
    change_tracking = Step(
        "change tracking",
        "read VirtualMachine snapshot and config.changeTrackingEnabled; VirtualMachine.ReconfigVM_Task "
        "(changeTrackingEnabled) if it is off and the VM has no snapshots of its own (else a full, "
        "read file by file)",
        when="hot, or a stopped VM",
        routes=("api",),
        retried=True,
    )
    snapshot = Step(
        "snapshot",
        "VirtualMachine.CreateSnapshot_Task (no memory, quiesced if Tools run)",
        "vim-cmd vmsvc/snapshot.create VMID NAME DESCRIPTION 0 QUIESCE (1 if Tools run)",
        when="hot: a running VM; a stopped VM read through change tracking",
        retried=True,
    )
    shut_down = Step(
        "shut down",
        "VirtualMachine.ShutdownGuest, VirtualMachine.PowerOffVM_Task if the guest does not stop",
        "vim-cmd vmsvc/power.shutdown VMID, vim-cmd vmsvc/power.off VMID if the guest does not stop",
        when="cold on a running VM (--cold)",
    )
    query_changed_areas = Step(
        "query changed areas",
        "VirtualMachine.QueryChangedDiskAreas of the snapshot per disk (since the parent's changeId, "
        "or '*': the allocated areas); a refused changeId makes the set a full",
        when="when change tracking is on",
        routes=("api",),
        retried=True,
    )
    copy_disk = Step(
        "copy",
        "stream each disk's descriptor and data over /folder to the target (only the changed or "
        "allocated areas, as Range requests, when change tracking is on); a read cut by a lost "
        "connection resumes from its byte with a Range request (jobs.host_retry_s)",
        "stream each disk's descriptor and data with `cat` over SSH to the target; a read cut by a "
        "lost connection resumes with `dd if=FILE bs=1048576 skip=N` from its 1 MiB block (jobs.host_retry_s)",
        each=True,
    )
    remove_snapshot = Step(
        "remove snapshot",
        "VirtualMachineSnapshot.RemoveSnapshot_Task",
        "vim-cmd vmsvc/snapshot.remove VMID ID",
        when="hot, always",
        cleanup=True,
        retried=True,
    )
    power_back_on = Step(
        "power back on",
        "VirtualMachine.PowerOnVM_Task",
        "vim-cmd vmsvc/power.on VMID",
        when="cold on a running VM, always",
        cleanup=True,
        retried=True,
    )
    adopt_set = Step(
        "adopt set",
        "read this job's manifest at the target and every file's size: a complete set is cataloged "
        "completed (this job's snapshot removed if left) and not copied again",
        when="a redelivered job whose earlier attempt wrote the manifest",
        only=_recovery,
    )
    write_manifest = Step("write manifest", "write manifest.json to the target")
    confirm_sizes = Step("confirm sizes at target", "read back every file's size at the target")
    catalog_completed = Step("catalog completed", "catalog the set as completed")
    reconcile_with_host = Step(
        "reconcile with host",
        "read this job's manifest at the target and every file's size; remove this job's snapshot "
        "if left (VirtualMachineSnapshot.RemoveSnapshot_Task): a complete set is cataloged completed "
        "and the job succeeds; else the set is discarded",
        "read this job's manifest at the target and every file's size; remove this job's snapshot "
        "if left (vim-cmd vmsvc/snapshot.remove): a complete set is cataloged completed and the job "
        "succeeds; else the set is discarded",
        when=_RECONCILE_WHEN.replace("once the host was asked", "once the manifest was written"),
        only=_recovery,
    )
    discard_set = Step(
        "discard backup set",
        "catalog the set as failed; delete its files at the target",
        when="when the job runs out of attempts",
        only=_recovery,
        cleanup=True,
    )
    restore_vm = Step(
        "restore VM",
        "VirtualMachineSnapshot.RemoveSnapshot_Task of this job's snapshot; VirtualMachine.PowerOnVM_Task "
        "of a VM an attempt shut down",
        "vim-cmd vmsvc/snapshot.remove of this job's snapshot; vim-cmd vmsvc/power.on of a VM an attempt "
        "shut down",
        when="when the job runs out of attempts",
        only=_recovery,
        cleanup=True,
    )
    pending_cleanup = PENDING_CLEANUP


def _in_place(spec: Any) -> bool:
    return bool(getattr(spec, "in_place", False))


def _as_new(spec: Any) -> bool:
    return not _in_place(spec)


class RestoreSteps:
    """``backup.restore`` (:mod:`ceso.backup.restore`, :mod:`ceso.backup.inplace`,
    :mod:`ceso.backup.thin_restore`): as a new VM, or ``--in-place`` over the original's files.
    Disks are staged beside the VM and copied thin by the host where it can (over SSH always;
    through the API where the datastore holds both copies), else written at their place."""

    read_manifest = Step(
        "read manifest",
        "read the manifest and check it against the catalog (an incremental's: each set of its chain "
        "back to the full)",
        retried=True,
    )
    check_vm = Step(
        "check VM",
        "the original VM is powered off and its disks are still the ones backed up",
        when="--in-place",
        only=_in_place,
        retried=True,
    )
    check = Step(
        "check",
        "refuse if the name is taken or the datastore lacks space (Datastore.RefreshDatastore); nothing "
        "written yet; a retried attempt first removes what an earlier one made (VirtualMachine.PowerOffVM_Task, "
        "VirtualMachine.Destroy_Task, FileManager.DeleteDatastoreFile_Task)",
        "refuse if the name is taken or the datastore lacks space (esxcli storage filesystem list); nothing "
        "written yet; a retried attempt first removes what an earlier one made (vim-cmd vmsvc/power.off, "
        "vim-cmd vmsvc/destroy, sftp.remove_tree)",
        only=_as_new,
        retried=True,
    )
    lock = Step("lock", "the VM's name and a slot on the datastore")
    check_vm_again = Step(
        "check VM again",
        "the same checks under the lock",
        when="--in-place",
        only=_in_place,
        retried=True,
    )
    make_directory = Step(
        "make directory",
        "FileManager.MakeDirectory [ds] NAME",
        "sftp.mkdir /vmfs/volumes/DS/NAME",
        only=_as_new,
    )
    make_staging = Step(
        "make staging folder",
        "FileManager.DeleteDatastoreFile_Task of a leftover, FileManager.MakeDirectory [ds] "
        "NAME/ceso-restore-staging",
        "sftp.remove_tree of a leftover, sftp.mkdir /vmfs/volumes/DS/NAME/ceso-restore-staging",
        when="staged: where the datastore holds both copies (always over SSH)",
    )
    restore_file = Step(
        "restore",
        "stream each disk file back over /folder (decrypt, decompress, sha256 checked; an incremental's "
        "rebuilt from its chain), into the staging folder when staged",
        "stream each disk file over SFTP (sftp.write; decrypt, decompress, sha256 checked; an "
        "incremental's rebuilt from its chain) into the staging folder",
        when="each disk file",
        each=True,
    )
    copy_disk_thin = Step(
        "copy disk",
        "VirtualDiskManager.CopyVirtualDisk_Task (thin) of each staged disk",
        "vmkfstools -i STAGED DST -d thin for each disk (a thin disk comes back thin)",
        when="staged, each disk",
        only=_as_new,
        each=True,
    )
    replace_disk_thin = Step(
        "replace disk",
        "VirtualDiskManager.DeleteVirtualDisk_Task and CopyVirtualDisk_Task (thin) at each disk's path",
        "vmkfstools -U DISK and vmkfstools -i STAGED DISK -d thin for each disk",
        when="--in-place, staged, each disk",
        only=_in_place,
        each=True,
    )
    remove_staging = Step(
        "remove staging folder",
        "FileManager.DeleteDatastoreFile_Task",
        "sftp.remove_tree",
        when="staged, always",
        cleanup=True,
    )
    create_vm = Step(
        "create VM",
        "Folder.CreateVM_Task with the backed-up hardware, a new BIOS UUID, new MACs and new guestinfo",
        "sftp.write of a complete NAME.vmx (the backed-up hardware, new uuid.bios, new static MACs, new "
        'guestinfo), vim-cmd solo/registervm, answering "I copied it" (vim-cmd vmsvc/message) if asked',
        only=_as_new,
    )
    restore_nvram = Step(
        "restore NVRAM",
        "stream the NVRAM back over /folder",
        "sftp.write of the NVRAM",
        when="a backup with one",
        only=_as_new,
    )
    restore_in_place = Step(
        "restore",
        "stream the NVRAM (and each disk file, when not staged) back over /folder at its place",
        "sftp.write of the NVRAM at its place",
        when="--in-place, each file not staged",
        only=_in_place,
        each=True,
    )
    power_on = Step(
        "power on",
        "VirtualMachine.PowerOnVM_Task",
        'vim-cmd vmsvc/power.on, answering "I copied it" (vim-cmd vmsvc/message) if ESXi asks',
        when="unless --no-power-on",
        only=lambda spec: not getattr(spec, "no_power_on", False),
    )
    clean_up = Step(
        "clean up after failure",
        "VirtualMachine.PowerOffVM_Task and VirtualMachine.Destroy_Task of the new VM, or "
        "FileManager.DeleteDatastoreFile_Task of its directory",
        "vim-cmd vmsvc/power.off and vim-cmd vmsvc/destroy of the new VM, or sftp.remove_tree of its directory",
        when="on failure, cancel or time limit",
        only=_as_new,
        cleanup=True,
    )
    remove_leftovers = _LEFTOVERS
    pending_cleanup = PENDING_CLEANUP


class DrillSteps:
    """``backup.drill`` (:mod:`ceso.backup.drill`): the restore of :class:`RestoreSteps` as a throwaway
    VM whose NICs stay disconnected (or the first on an isolated port group), booted until VMware
    Tools beat, its outcome catalogued, and the VM always removed."""

    check_network = Step(
        "check network",
        "the port group exists on the host (nothing made yet)",
        "esxcli network vswitch standard portgroup list (nothing made yet)",
        when="with --network",
        only=_flag("network"),
    )
    read_manifest = RestoreSteps.read_manifest
    check = RestoreSteps.check
    lock = RestoreSteps.lock
    make_directory = RestoreSteps.make_directory
    make_staging = RestoreSteps.make_staging
    restore_file = RestoreSteps.restore_file
    copy_disk_thin = RestoreSteps.copy_disk_thin
    remove_staging = RestoreSteps.remove_staging
    create_vm = Step(
        "create VM",
        "Folder.CreateVM_Task with the backed-up hardware, a new BIOS UUID, new MACs and new guestinfo; "
        "every NIC disconnected and not connected at power on (with --network: the first one on that "
        "port group, connected)",
        "sftp.write of a complete NAME.vmx (the backed-up hardware, new uuid.bios, new static MACs, new "
        "guestinfo, ethernetN.startConnected FALSE but the --network NIC), vim-cmd solo/registervm, "
        'answering "I copied it" (vim-cmd vmsvc/message) if asked',
    )
    restore_nvram = RestoreSteps.restore_nvram
    power_on = Step(
        "power on",
        "VirtualMachine.PowerOnVM_Task",
        'vim-cmd vmsvc/power.on, answering "I copied it" (vim-cmd vmsvc/message) if ESXi asks',
    )
    wait_heartbeat = Step(
        "wait for heartbeat",
        "read guest.toolsRunningStatus and summary.quickStats.guestHeartbeatStatus until VMware Tools "
        "run with a green heartbeat (--boot-timeout)",
        "vim-cmd vmsvc/get.guest until toolsRunningStatus is guestToolsRunning (--boot-timeout)",
    )
    wait_ip = Step(
        "wait for guest IP",
        "read guest.net and guest.ipAddress until the guest reports an address (within --boot-timeout)",
        "vim-cmd vmsvc/get.guest until the guest reports an address (within --boot-timeout)",
        when="with --network",
        only=_flag("network"),
    )
    clean_up = RestoreSteps.clean_up
    remove_vm = Step(
        "remove drill VM",
        "VirtualMachine.PowerOffVM_Task and VirtualMachine.Destroy_Task of the drill's VM",
        "vim-cmd vmsvc/power.off and vim-cmd vmsvc/destroy of the drill's VM",
        when="always, once it was made",
        cleanup=True,
    )
    record_outcome = Step(
        "record outcome",
        "catalog the drill on the backup: passed or failed, the reason, restore and boot seconds",
        when="always, unless cancelled or refused before the restore",
        cleanup=True,
    )
    remove_leftovers = _LEFTOVERS
    pending_cleanup = PENDING_CLEANUP


# -- templates -----------------------------------------------------------------------------------
class ImportSteps:
    """``template.import`` (:mod:`ceso.operations.template_import`): an OVF lease on the API route,
    disks converted on the worker and written over SFTP on the SSH route."""

    read_package = Step(
        "read package", "read the package's descriptor and manifest; refuse what cannot be imported"
    )
    check_host = Step(
        "check host",
        "the datastore and a port group for the template's NICs",
        "esxcli storage filesystem list; esxcli network vswitch standard portgroup list",
        retried=True,
    )
    lock = Step("lock", "the new name and a slot on the datastore")
    check_name = Step(
        "check name",
        "refuse a name, datastore folder or template in use (HostDatastoreBrowser.SearchDatastore_Task); a "
        "retried attempt adopts the complete VM an earlier one made, or first removes it "
        "(VirtualMachine.Destroy_Task, FileManager.DeleteDatastoreFile_Task) and its template row",
        "refuse a name, datastore folder or template in use; a retried attempt adopts the complete VM an "
        "earlier one made, or first removes it (vim-cmd vmsvc/destroy, sftp.remove_tree) and its template row",
    )
    import_vm = Step(
        "import VM",
        "OvfManager.CreateImportSpec (thin disks, every network on --network), ResourcePool.ImportVApp: "
        "the VM and its empty disks",
        routes=(API,),
    )
    upload_disk = Step(
        "upload disk",
        "HttpNfcLease upload: POST each stream-optimized disk as it streams from SOURCE "
        "(HttpNfcLeaseProgress keeps the lease alive); each disk checked against the manifest",
        when="each disk",
        each=True,
        routes=(API,),
    )
    complete_import = Step("complete import", "HttpNfcLease.HttpNfcLeaseComplete", routes=(API,))
    record_tools = Step(
        "record image tools",
        "VirtualMachine.ReconfigVM_Task: the image's VMware Tools version in extraConfig",
        when="an image with VMware Tools",
        routes=(API,),
    )
    make_directory = Step("make directory", "sftp.mkdir /vmfs/volumes/DS/NAME", routes=(SSH,))
    convert_upload = Step(
        "convert and upload disk",
        "convert each stream-optimized disk on the worker as it streams from SOURCE; sftp.write of the data "
        "grains into NAME-flat.vmdk (sftp.write_sparse: holes stay holes) and of its descriptor NAME.vmdk",
        when="each disk",
        each=True,
        routes=(SSH,),
    )
    create_vm = Step(
        "create VM",
        "sftp.write of NAME.vmx (the OVF's hardware, static MACs); vim-cmd solo/registervm, vim-cmd "
        'vmsvc/message (answering "I copied it" if asked)',
        routes=(SSH,),
    )
    register_template = Step("register template", "register the VM as a template and validate it")
    abort_import = Step(
        "abort import",
        "HttpNfcLease.HttpNfcLeaseAbort",
        when="on failure, cancel or time limit",
        cleanup=True,
        routes=(API,),
    )
    clean_up = Step(
        "clean up after failure",
        "VirtualMachine.PowerOffVM_Task and VirtualMachine.Destroy_Task of the VM, "
        "FileManager.DeleteDatastoreFile_Task of its folder, the template row if written",
        "vim-cmd vmsvc/power.off and vim-cmd vmsvc/destroy of the VM, sftp.remove_tree of its folder, "
        "the template row if written",
        when="on failure, cancel or time limit",
        cleanup=True,
    )
    remove_leftovers = _LEFTOVERS
    pending_cleanup = PENDING_CLEANUP


#: Each job kind's steps (the class that declares them).
PLANS: dict[str, type] = {
    "host.ping": HostPingSteps,
    "vm.create": NewVmSteps,
    "vm.clone": NewVmSteps,
    "vm.power": PowerSteps,
    "vm.delete": DeleteSteps,
    "vm.reconfigure": ReconfigureSteps,
    "vm.snapshot.create": SnapshotCreateSteps,
    "vm.snapshot.revert": SnapshotRevertSteps,
    "vm.snapshot.delete": SnapshotDeleteSteps,
    "backup.create": BackupSteps,
    "backup.restore": RestoreSteps,
    "backup.drill": DrillSteps,
    "template.import": ImportSteps,
    "test.sleep": SleepSteps,
}


#: A kind whose spec may choose another class of steps: (the spec's test, that class).
VARIANTS: dict[str, tuple[Callable[[Any], bool], type]] = {
    "vm.create": (_flag("blank"), BlankVmSteps),
}


def plan_of(kind: str, spec: Any = None) -> type:
    """The class of the steps a job of ``kind`` (and ``spec``, when known) runs: ``PLANS[kind]``
    unless the spec picks a :data:`VARIANTS` class (``vm.create --blank``)."""
    variant = VARIANTS.get(kind)
    if variant is not None and spec is not None and variant[0](spec):
        return variant[1]
    return PLANS[kind]


def runs_in_shell(kind: str) -> bool:
    """True if ``kind`` runs in the ESXi shell on the SSH route (some step names a shell call)."""
    return any(step.ssh is not None for step in steps_of(PLANS[kind]))


def plan_for(spec: Spec, route: str) -> list[str]:
    """The steps a job of ``spec`` will take on ``route`` (``api`` or ``ssh``), for ``--dry-run``.

    A kind that does not run in the shell shows its API plan on the SSH route too
    (``host.ping``); one refused over SSH says so there. KeyError for a kind with no plan: every
    job kind has one (a test walks them).
    """
    kind = plan_of(spec.kind, spec)
    if route == SSH and kind in REFUSED_OVER_SSH:
        return [REFUSED_OVER_SSH[kind]]
    steps = [s for s in steps_of(kind) if route in s.routes and (s.only is None or s.only(spec))]
    first = [_SSH_FIRST] if route == SSH and runs_in_shell(spec.kind) else []
    return [*first, *(s.line(route) for s in steps)]


def dry_run_plan(runtime: Runtime, spec: Spec, host: str, details: list[str] | None = None) -> list[str]:
    """:func:`plan_for` the route ``host`` takes now, with ``details`` (what a request builder
    worked out, such as a reconfigure's changes) indented below it."""
    from ceso.backends.routes import route_of

    return [*plan_for(spec, route_of(runtime, host)), *(f"  {line}" for line in details or [])]
