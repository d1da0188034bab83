"""What a job will do, by kind and route: :func:`plan_for`, the one source of every ``--dry-run``.

The CLI (in-process), cesod (``dry_run``) and so the CLI through a local cesod show the
plan of the route the job's host would take now (:func:`ceso.backends.routes.route_of`): the
vSphere API calls, or on the SSH route the ESXi shell commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ceso.specs import Spec

if TYPE_CHECKING:
    from ceso.runtime import Runtime

__all__ = ["API", "SSH", "dry_run_plan", "plan_for"]

API, SSH = "api", "ssh"

_SSH_FIRST = "SSH route: the host's API cannot write (or route: ssh); every step runs in the ESXi shell"
_NEW_VM_API = [
    "FileManager.MakeDirectory [ds] NAME",
    "VirtualDiskManager.CopyVirtualDisk_Task for each source disk (thin, on the host)",
    "Folder.CreateVM_Task with the source's hardware, a new BIOS UUID, new MACs and guestinfo",
    "FileManager.CopyDatastoreFile_Task of the source's NVRAM over the new VM's (EFI sources)",
    "VirtualMachine.ReconfigVM_Task to grow the disk (only with --disk)",
    "VirtualMachine.PowerOnVM_Task (unless --no-power-on)",
]
_NEW_VM_SSH = [
    "SFTP mkdir /vmfs/volumes/DS/NAME",
    "vmkfstools -i SRC DST -d thin for each source disk (the bytes stay on the host)",
    "SFTP upload of a complete NAME.vmx: new uuid.bios, new static MACs, guestinfo (cloud-init)",
    "vim-cmd solo/registervm /vmfs/volumes/DS/NAME/NAME.vmx NAME",
    "SFTP copy of the source's NAME.nvram over the new VM's (EFI sources: the boot entries)",
    "vmkfstools -X SIZE for the first disk (only with --disk)",
    'vim-cmd vmsvc/power.on VMID, answering "I copied it" if ESXi asks (unless --no-power-on)',
]
_POWER_API = {
    "on": ["VirtualMachine.PowerOnVM_Task (nothing if already poweredOn)"],
    "off": ["VirtualMachine.PowerOffVM_Task (nothing if already poweredOff)"],
    "reset": ["VirtualMachine.ResetVM_Task (needs a powered-on VM)"],
    "reboot": ["VirtualMachine.RebootGuest (needs VMware Tools in the guest)"],
    "shutdown": [
        "VirtualMachine.ShutdownGuest, then wait for poweredOff up to --timeout-guest",
        "with --force: VirtualMachine.PowerOffVM_Task if the guest did not stop",
    ],
}
_POWER_SSH = {
    "on": ['vim-cmd vmsvc/power.on VMID (nothing if already poweredOn), answering "I copied it" if asked'],
    "off": ["vim-cmd vmsvc/power.off VMID (nothing if already poweredOff)"],
    "reset": ["vim-cmd vmsvc/power.reset VMID (needs a powered-on VM)"],
    "reboot": ["vim-cmd vmsvc/power.reboot VMID (needs VMware Tools in the guest)"],
    "shutdown": [
        "vim-cmd vmsvc/power.shutdown VMID, then wait for poweredOff up to --timeout-guest",
        "with --force: vim-cmd vmsvc/power.off VMID if the guest did not stop",
    ],
}
_LOCK_FIND_SNAPSHOT = "lock the VM; find the one snapshot of that name (refuse an ambiguous name)"

_Plan = Callable[[Spec], list[str]]


def _power(table: dict[str, list[str]]) -> _Plan:
    return lambda spec: ["lock the VM; check its power state again", *table[getattr(spec, "action")]]  # noqa: B009


def _fixed(*steps: str) -> _Plan:
    return lambda _spec: list(steps)


_BLANK_API = [
    "HostDatastoreBrowser.SearchDatastore_Task: the ISO exists (only with --iso)",
    "lock the new VM name and a slot on the datastore",
    "Folder.CreateVM_Task: EFI, a new thin disk of --disk on a PVSCSI controller, a VMXNET3 NIC "
    "with a new static MAC, a SATA CD-ROM with the ISO connected at power-on (with --iso)",
    "VirtualMachine.PowerOnVM_Task (unless --no-power-on)",
]


def _blank_or(template: _Plan, *, blank: _Plan | None = None) -> _Plan:
    """``vm.create``'s plan: ``blank``'s (the API's blank VM by default) for ``--blank``, else ``template``'s."""
    chosen = blank or _fixed(*_BLANK_API)
    return lambda spec: (chosen if getattr(spec, "blank", False) else template)(spec)


#: (kind, route) → the plan; a kind with one entry under API runs on the API on every host.
_PLANS: dict[tuple[str, str], _Plan] = {
    ("host.ping", API): _fixed("SessionManager.Login (pooled session)", "ServiceInstance.CurrentTime"),
    ("host.ping", SSH): _fixed(
        "SessionManager.Login (pooled session; the API reads on the SSH route too)",
        "ServiceInstance.CurrentTime",
    ),
    ("vm.create", API): _blank_or(_fixed("lock the new VM name and a slot on the datastore", *_NEW_VM_API)),
    ("vm.create", SSH): _blank_or(
        _fixed(
            _SSH_FIRST,
            "lock the new VM name and a slot on the datastore",
            "vim-cmd vmsvc/getallvms; SFTP read of the template's .vmx and disk descriptors",
            *_NEW_VM_SSH,
        ),
        blank=_fixed("refused: a blank VM is not made over SSH (not_supported_over_ssh)"),
    ),
    ("vm.clone", API): _fixed(
        "lock the source and the new VM name, and a slot on the datastore",
        "with --hot: VirtualMachine.CreateSnapshot_Task on the source (no memory), removed afterwards, always",
        "with --shutdown-source: VirtualMachine.ShutdownGuest, power back on afterwards",
        *_NEW_VM_API,
    ),
    ("vm.clone", SSH): _fixed(
        _SSH_FIRST,
        "lock the new VM name, the source and a slot on the datastore",
        "vim-cmd vmsvc/getallvms; SFTP read of the source's .vmx and disk descriptors",
        "with --hot: vim-cmd vmsvc/snapshot.create of the source, removed afterwards",
        "with --shutdown-source: vim-cmd vmsvc/power.shutdown, powered back on afterwards",
        *_NEW_VM_SSH,
    ),
    ("vm.power", API): _power(_POWER_API),
    ("vm.power", SSH): _power(_POWER_SSH),
    ("vm.delete", API): _fixed(
        "refuse a registered template, a protected VM, a VM with another job in flight",
        "lock the VM and a slot on its datastore; check all of that again",
        "VirtualMachine.PowerOffVM_Task (only with --force, if the VM is not powered off)",
        "VirtualMachine.Destroy_Task: unregister the VM and delete its files (.vmx, disks, logs, nvram)",
        "HostDatastoreBrowser.SearchDatastore_Task: report whether the VM's folder is gone",
    ),
    ("vm.delete", SSH): _fixed(
        _SSH_FIRST,
        "refuse a registered template, a protected VM, a VM with another job in flight",
        "lock the VM and a slot on its datastore; check all of that again",
        "vim-cmd vmsvc/power.off VMID (only with --force, if the VM is not powered off)",
        "vim-cmd vmsvc/destroy VMID: unregister the VM and delete its files",
        "SFTP stat of the VM's folder: report whether it is gone",
    ),
    ("vm.reconfigure", API): _fixed(
        "lock the VM; read its hardware again and plan every change",
        "HostDatastoreBrowser.SearchDatastore_Task: the ISO exists (only with --iso)",
        "VirtualMachine.ReconfigVM_Task: one task with every change (CPUs, memory, disks, NIC, CD-ROM)",
    ),
    ("vm.snapshot.create", API): _fixed(
        "lock the VM; refuse a snapshot name it already has",
        "VirtualMachine.CreateSnapshot_Task (memory and quiesce as asked)",
    ),
    ("vm.snapshot.create", SSH): _fixed(
        _SSH_FIRST,
        "lock the VM; refuse a snapshot name it already has",
        "vim-cmd vmsvc/snapshot.create VMID NAME DESCRIPTION MEMORY QUIESCE",
    ),
    ("vm.snapshot.revert", API): _fixed(_LOCK_FIND_SNAPSHOT, "VirtualMachineSnapshot.RevertToSnapshot_Task"),
    ("vm.snapshot.revert", SSH): _fixed(
        _SSH_FIRST, _LOCK_FIND_SNAPSHOT, "vim-cmd vmsvc/snapshot.revert VMID SNAPSHOT-ID 0"
    ),
    ("vm.snapshot.delete", API): _fixed(
        _LOCK_FIND_SNAPSHOT, "VirtualMachineSnapshot.RemoveSnapshot_Task (removeChildren with --children)"
    ),
    ("vm.snapshot.delete", SSH): _fixed(
        _SSH_FIRST,
        _LOCK_FIND_SNAPSHOT,
        "vim-cmd vmsvc/snapshot.remove VMID SNAPSHOT-ID (--children is refused over SSH)",
    ),
    ("backup.create", API): _fixed(
        "lock the VM and a slot of the target",
        "catalog the set as pending",
        "stream the .vmx and .nvram over /folder (sha256, compression, encryption) to the target",
        "hot: VirtualMachine.CreateSnapshot_Task (no memory, quiesced if Tools run), removed afterwards, always",
        "cold on a running VM (--cold): guest shutdown, power back on afterwards, always",
        "stream each disk's descriptor and data to the target",
        "write manifest.json, confirm every size at the target, catalog the set as completed",
    ),
    ("backup.create", SSH): _fixed(
        _SSH_FIRST,
        "lock the VM and a slot of the target",
        "catalog the set as pending",
        "vim-cmd vmsvc/getallvms; SFTP read of the .vmx; vim-cmd vmsvc/get.guest (are Tools running?)",
        "stream the .vmx and .nvram with `cat /vmfs/volumes/DS/VM/FILE` over SSH (sha256, compression, "
        "encryption) to the target",
        "hot: vim-cmd vmsvc/snapshot.create VMID NAME DESCRIPTION 0 QUIESCE (1 if Tools run), "
        "removed afterwards with vim-cmd vmsvc/snapshot.remove VMID ID, always",
        "cold on a running VM (--cold): vim-cmd vmsvc/power.shutdown VMID, vim-cmd vmsvc/power.on VMID "
        "afterwards, always",
        "stream each disk's descriptor and data with `cat` over SSH to the target",
        "write manifest.json, confirm every size at the target, catalog the set as completed",
    ),
    ("backup.restore", API): _fixed(
        "read the manifest and check it against the catalog",
        "refuse if the name is taken or the datastore lacks space (nothing written yet)",
        "lock the new name and a slot on the datastore; FileManager.MakeDirectory [ds] NAME",
        "stream each disk file back over /folder (decrypt, decompress, sha256 checked) into "
        "[ds] NAME/ceso-restore-staging, then VirtualDiskManager.CopyVirtualDisk_Task (thin) per disk and "
        "remove the staging folder (without room for both copies: written at their place, inflated)",
        "Folder.CreateVM_Task with the backed-up hardware, a new BIOS UUID, new MACs and new guestinfo",
        "restore the NVRAM; VirtualMachine.PowerOnVM_Task (unless --no-power-on)",
        "--in-place: the VM must be powered off and have the recorded disks; disks staged as above, then "
        "VirtualDiskManager.DeleteVirtualDisk_Task and CopyVirtualDisk_Task (thin) per disk at its path "
        "(without room, or with snapshot chains: each file written back over /folder); identity kept",
    ),
    ("backup.restore", SSH): _fixed(
        _SSH_FIRST,
        "read the manifest and check it against the catalog",
        "refuse if the name is taken or the datastore lacks space (esxcli storage filesystem list; "
        "nothing written yet)",
        "lock the new name and a slot on the datastore; SFTP mkdir /vmfs/volumes/DS/NAME",
        "stream each disk file over SFTP (decrypt, decompress, sha256 checked) into "
        "/vmfs/volumes/DS/NAME/ceso-restore-staging",
        "vmkfstools -i STAGED DST -d thin for each disk (a thin disk comes back thin); remove the staging folder",
        "SFTP upload of a complete NAME.vmx: the backed-up hardware, new uuid.bios, new static MACs, "
        "new guestinfo (cloud-init)",
        'vim-cmd solo/registervm /vmfs/volumes/DS/NAME/NAME.vmx NAME, answering "I copied it" if asked',
        "SFTP upload of the NVRAM; vim-cmd vmsvc/power.on VMID (unless --no-power-on)",
        "--in-place: the VM must be powered off and have the recorded disks; disks staged as above, then "
        "vmkfstools -U DISK and vmkfstools -i STAGED DISK -d thin per disk; the NVRAM over SFTP; identity kept",
    ),
    ("template.import", API): _fixed(
        "read the package's descriptor and manifest; refuse what cannot be imported (nothing made yet)",
        "lock the new name and a slot on the datastore",
        "OvfManager.CreateImportSpec (thin disks, every network on --network)",
        "ResourcePool.ImportVApp: the VM and its empty disks",
        "HttpNfcLease: POST each stream-optimized disk as it streams from SOURCE; HttpNfcLeaseProgress keeps it alive",
        "check each disk against the manifest and SOURCE against --sha256",
        "HttpNfcLeaseComplete (HttpNfcLeaseAbort and remove the VM on any failure)",
        "register the VM as a template and validate it",
    ),
    ("template.import", SSH): _fixed(
        _SSH_FIRST,
        "read the package's descriptor and manifest; refuse what cannot be imported (nothing made yet)",
        "lock the new name and a slot on the datastore",
        "SFTP mkdir /vmfs/volumes/DS/NAME",
        "convert each stream-optimized disk on the worker as it streams from SOURCE; SFTP write of the "
        "data grains into NAME-flat.vmdk (thin: holes stay holes) and of its descriptor NAME.vmdk",
        "check each disk against the manifest and SOURCE against --sha256",
        "SFTP upload of NAME.vmx (the OVF's hardware, static MACs); vim-cmd solo/registervm",
        "register the VM as a template and validate it (a failure removes the VM and its folder)",
    ),
}


def plan_for(spec: Spec, route: str) -> list[str]:
    """The steps a job of ``spec`` will take on ``route`` (``api`` or ``ssh``), for ``--dry-run``.

    A kind without a plan of its own on the SSH route runs on the API there too (reconfigure).
    KeyError for a kind with no plan at all: every operation spec has one (a test walks them).
    """
    plan = _PLANS.get((spec.kind, route)) or _PLANS[spec.kind, API]
    return plan(spec)


def dry_run_plan(runtime: Runtime, spec: Spec, host: str, details: list[str] | None = None) -> list[str]:
    """:func:`plan_for` the route ``host`` takes now, with ``details`` (what a request builder
    worked out, such as a reconfigure's changes) indented below it."""
    from ceso.backends.routes import route_of

    return [*plan_for(spec, route_of(runtime, host)), *(f"  {line}" for line in details or [])]
