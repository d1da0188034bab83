"""The record follows the host: a job whose work is done on the host succeeds.

A job can finish its work on the host and still be kept from saying so: the broker, SQL or the
host's connection fails after the last host-changing step (the answer to "power on" lost, SQL
down when the outcome is written, a lock that cannot be released). Two places ask the host
instead of trusting what went wrong:

- the runner, before it records such a fault as the job's failure (:func:`reconcile`): the job
  ends ``succeeded`` with a result read from the host if the VM the job made is complete;
  otherwise the kind's cleanup runs (:func:`ceso.jobs.leftovers.cleanups_for`) and the job fails
  with the fault;
- a redelivered attempt (:func:`completed_vm`, from provisioning's "check name" step): an earlier
  attempt that finished the VM but never recorded it gets the VM adopted, not rebuilt.

"Complete" is read from the host, never from the job's own record: the VM of the job's name
carries this job's marker (``ceso.job-id`` extraConfig, so someone else's VM is never taken), its
disk is at least the size asked for, it is powered on unless the job asked otherwise, an EFI
VM's NVRAM copy ran, and with ``--wait-ip`` the guest reports the addresses asked for. The VM is
registered only after its disks were copied, so a registered VM has them.

The changes to an existing VM are read back the same way, once the step that asks the host for
the change started (:data:`READ_BACK`: each kind's steps and its read-back, in the kind's module):
``vm power`` on, off or shutdown (the power state the action leads to), ``vm delete`` (no VM of
that name and BIOS UUID), ``vm snapshot create`` (one snapshot of the job's name), ``vm snapshot
delete`` (the snapshot's id gone) and ``vm reconfigure`` (planned again, nothing left to change).
Found, the job succeeds with ``reconciled`` naming the fault; not found (or the host unreadable),
it fails with the fault: nothing is undone, as before. A reset, a guest reboot and a revert leave
nothing that tells they happened, so they are not reconciled.

``backup create`` follows its target the same way once its manifest was written
(:func:`ceso.backup.create.reconcile_set`): a set complete at the target is cataloged and the job
succeeds; a redelivered attempt adopts it rather than copying again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ceso.errors import CesoError
from ceso.jobs.faults import FAULT_CODES, is_fault, sql_unreachable
from ceso.operations.leftovers import JOB_MARKER

if TYPE_CHECKING:
    from ceso.backends.protocol import AnyBackend
    from ceso.jobs.context import JobContext
    from ceso.operations.provision_options import ProvisionOptions

__all__ = ["FAULT_CODES", "Found", "completed_vm", "is_fault", "reconcile", "sql_unreachable"]

log = logging.getLogger(__name__)

#: The job kinds whose work :func:`completed_vm` can read back from the host.
KINDS = ("vm.create", "vm.clone")

#: The kinds that change an existing VM whose effect is read back from the host: the module that
#: runs the kind, which declares ``CHANGING_STEPS`` (the steps that ask the host for the change)
#: and the named function (job context → the job's result, or None if the effect is not there).
READ_BACK: dict[str, tuple[str, str]] = {
    "vm.power": ("ceso.operations.vm_power", "read_back_power"),
    "vm.delete": ("ceso.operations.vm_delete", "read_back_delete"),
    "vm.snapshot.create": ("ceso.operations.vm_snapshot_create", "read_back_snapshot"),
    "vm.snapshot.delete": ("ceso.operations.vm_snapshot_delete", "read_back_removed"),
    "vm.reconfigure": ("ceso.operations.vm_reconfigure", "read_back_reconfigured"),
}

#: The kinds that reconcile on their own: the module and its function (job context, fault → the
#: job's result, or None after the kind's cleanup). Named, not imported: the kind's module imports
#: :func:`is_fault` from here.
OWN_RECONCILE: dict[str, tuple[str, str]] = {
    "backup.create": ("ceso.backup.create", "reconcile_set"),
}

_PROPS = [
    "config.extraConfig",
    "config.uuid",
    "config.firmware",
    "config.hardware.device",
    "summary.config.vmPathName",
    "runtime.powerState",
]


@dataclass(frozen=True)
class Found:
    """What :func:`completed_vm` found: the VM of this job (``vm``, None if there is none); if it is
    built (all but the guest's address), the job's result read from the host (``result``); and
    whether it is complete (built, and with ``--wait-ip`` the guest reports its addresses)."""

    vm: Any = None
    result: dict[str, Any] | None = None
    complete: bool = False

    @property
    def built(self) -> bool:
        return self.result is not None


def completed_vm(ctx: JobContext, ops: AnyBackend, opts: ProvisionOptions) -> Found:
    """This job's VM ``opts.name`` on the host, and its result if it is built (see the module).

    Only reads. Raises the backend's CesoErrors (the host unreachable, say).
    """
    from ceso.backends.paths import split_datastore_path

    if not ops.exists(opts.name):
        return Found()
    vm = ops.find(opts.name)
    props = ops.props(vm, _PROPS)
    extra = {o.key: o.value for o in props.get("config.extraConfig") or []}
    if extra.get(JOB_MARKER) != ctx.job.id:
        return Found()  # someone else's VM: never this job's work
    devices = props.get("config.hardware.device") or []
    disks = [d for d in devices if type(d).__name__.endswith("VirtualDisk")]
    macs = [str(d.macAddress) for d in devices if getattr(d, "macAddress", None)]
    power = str(props.get("runtime.powerState"))
    built = bool(disks)
    if opts.disk_bytes is not None and disks:
        built &= disks[0].capacityInKB * 1024 >= opts.disk_bytes
    if opts.power_on:
        built &= power == "poweredOn"
    if props.get("config.firmware") == "efi":
        built &= _nvram_copied(ctx.steps)
    if not built:
        return Found(vm)
    complete, ips = True, []
    if opts.power_on and opts.wait_ip:
        ips = ops.guest_ips(vm)
        expected = {a.split("/")[0] for a in (opts.guest.ip, opts.guest.ip6) if a and a.lower() != "dhcp"}
        complete = bool(ips) and expected <= set(ips)
    vmx_path = str(props.get("summary.config.vmPathName"))
    result = {
        "name": opts.name,
        "host": ctx.job.host,
        "uuid": props.get("config.uuid"),
        "macs": macs,
        "instance_id": _instance_id(extra),
        "datastore": split_datastore_path(vmx_path)[0],
        "vmx_path": vmx_path,
        "disks": [str(d.backing.fileName) for d in disks],
        "power_state": power,
        "ip_addresses": ips,
    }
    return Found(vm, result, complete)


def _nvram_copied(steps: list[dict[str, Any]]) -> bool:
    """An EFI VM's boot entries were copied: the step ended well, or a later step started (a step
    starts only after the one before it ended well)."""
    from ceso.plans import NewVmSteps

    copies = [i for i, s in enumerate(steps) if NewVmSteps.copy_nvram.matches(str(s.get("name")))]
    if not copies:
        return False
    last = copies[-1]
    later = (NewVmSteps.grow_disk, NewVmSteps.power_on)
    return steps[last].get("state") == "succeeded" or any(step.ran_in(steps[last + 1 :]) for step in later)


def _instance_id(extra: dict[str, str]) -> str | None:
    """The cloud-init instance id in the VM's guestinfo metadata (None if it cannot be read)."""
    import yaml

    from ceso.cloudinit.encoding import decode_guestinfo

    try:
        metadata = yaml.safe_load(decode_guestinfo(extra).get("metadata", "")) or {}
    except (CesoError, yaml.YAMLError):
        return None
    value = metadata.get("instance-id") if isinstance(metadata, dict) else None
    return str(value) if value is not None else None


def _options(ctx: JobContext) -> ProvisionOptions:
    from ceso.operations.provision_options import ProvisionOptions
    from ceso.vm.specs import CloneVm, CreateVm

    spec = CreateVm.from_job(ctx.params) if ctx.job.kind == "vm.create" else CloneVm.from_job(ctx.params)
    return ProvisionOptions.from_spec(spec, name=spec.name)


def _extra(ctx: JobContext) -> dict[str, Any]:
    """What the kind's handler adds to the provisioning result (one place: the handlers' own keys)."""
    p = ctx.params
    return {"template": p["template"]} if ctx.job.kind == "vm.create" else {"source": p["source"]}


def reconcile(ctx: JobContext, error: CesoError) -> dict[str, Any] | None:  # noqa: PLR0911  (one return per kind)
    """Before job ``ctx`` is failed with the fault ``error``: its result if its work is complete on
    the host, else None after the kind's cleanup ran (left pending on ``error`` if it fails too).

    Records a "reconcile with host" step (what was found) and, when the work is incomplete, the
    cleanup steps. A job that never asked the host to change anything, a kind this module does not
    know, and a cancel requested meanwhile all give None at once. A backup whose complete set SQL
    keeps from the catalog raises that SQL error (the delivery comes again and adopts it). A
    complete VM of a job that asked to wait for its address and was stopped before the address came
    is left as it is, as the timeout of that wait leaves it. A handler that already cleaned up
    after the fault (its VM was not built: provisioning asks :func:`completed_vm` first) is not
    asked again. Never raises but ClaimLostError (and that SQL error).
    """
    from ceso.jobs.cleanup import undo
    from ceso.jobs.leftovers import cleanups_for
    from ceso.plans import NewVmSteps

    if ctx.job.kind in READ_BACK:
        return _read_back(ctx, error)
    if ctx.job.kind in OWN_RECONCILE:
        import importlib

        module_name, function = OWN_RECONCILE[ctx.job.kind]
        own: dict[str, Any] | None = getattr(importlib.import_module(module_name), function)(ctx, error)
        return own
    if ctx.job.kind not in KINDS or not NewVmSteps.make_directory.ran_in(ctx.steps):
        return None
    if any(s.get("cleanup") for s in ctx.steps[len(ctx.earlier_steps) :]):
        return None  # the handler saw the fault, found its VM unfinished and cleaned up already
    found = Found()
    try:
        with ctx.recovery_step(NewVmSteps.reconcile_with_host, details={"cause": error.code}) as rec:
            opts = _options(ctx)
            found = completed_vm(ctx, ops := ctx.backend(), opts)
            rec.update(vm_found=found.vm is not None, complete=found.complete)
            if found.complete and ctx.job.kind == "vm.clone":
                # The source as a finished clone leaves it: no temporary snapshot, powered back on.
                from ceso.operations.leftovers import remove_leftovers

                remove_leftovers(
                    ctx,
                    ops,
                    name=opts.name,
                    source_name=ctx.params["source"],
                    keep_vm=True,
                    power_source_on=True,
                )
    except CesoError as exc:
        log.warning("job %s: reconciling with the host failed: %s", ctx.job.id, exc.message)
        found = Found()
    if found.complete and found.result is not None:
        return {**found.result, **_extra(ctx), "reconciled": error.code}
    if found.built:
        return None  # complete but for the guest's address: left, as a --wait-ip timeout leaves it
    try:
        cleanups = cleanups_for(ctx)
    except Exception:  # params it cannot read: the failure is recorded all the same
        log.exception("job %s: its cleanup could not be prepared", ctx.job.id)
        cleanups = []
    for step, action in cleanups:
        undo(ctx, step, action, cause=error)
    return None


def _read_back(ctx: JobContext, error: CesoError) -> dict[str, Any] | None:
    """:func:`reconcile` of a kind of :data:`READ_BACK`: its result read from the host if the change
    it asked for is there, else None (nothing to undo). Only once a changing step started."""
    import importlib

    from ceso.plans import PLANS, Step

    module_name, function = READ_BACK[ctx.job.kind]
    module = importlib.import_module(module_name)
    if not any(step.ran_in(ctx.steps) for step in module.CHANGING_STEPS):
        return None
    result = None
    try:
        step: Step = getattr(PLANS[ctx.job.kind], "reconcile_with_host")  # noqa: B009 - each kind of READ_BACK declares it
        with ctx.recovery_step(step, details={"cause": error.code}) as rec:
            result = getattr(module, function)(ctx)
            rec.update(complete=result is not None)
    except CesoError as exc:
        log.warning("job %s: reconciling with the host failed: %s", ctx.job.id, exc.message)
        return None
    return None if result is None else {**result, "reconciled": error.code}
