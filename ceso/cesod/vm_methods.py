"""cesod's VM methods: the same request builders as the CLI, params spelled like its options.

Two differences from the CLI, both because the caller is remote: ``userdata``
and ``vendordata`` are the documents themselves (the CLI takes file paths),
and ``ssh_key`` takes public key lines only (the CLI also reads key files) —
cesod never reads a file a caller names. One of form: ``vm.reconfigure``'s
``disk_grow`` is an array of ``DISK=SIZE`` strings where the CLI repeats
``--disk-grow DISK SIZE``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ceso.cesod.calls import JOB_PARAMS, Call, Method, submit_and_report
from ceso.cesod.schema import Param
from ceso.errors import InvalidInputError
from ceso.vm.documents import MAX_DOCUMENT_FILE

__all__ = ["GUEST", "HARDWARE", "VM_METHODS", "disk_grow_pairs", "guest_options"]

S, INT, N, B, A = "string", "integer", "number", "boolean", "array"

HOST = {"host": Param(S, "The VM's host (optional when the name is unique across hosts).")}
HARDWARE = {
    "cpus": Param(INT, "Virtual CPUs (default: the source's)."),
    "memory": Param(S, "Memory, e.g. 4G or 4096M (default: the source's)."),
    "disk": Param(S, "Grow the first disk to SIZE, e.g. 40G (never shrinks)."),
    "datastore": Param(S, "Datastore for the new VM (default: the source's)."),
    "network": Param(S, "Port group of the first NIC (default: the source's)."),
    "no_power_on": Param(B, "Leave the new VM powered off.", default=False),
    "wait_ip": Param(B, "Wait until VMware Tools report the guest's address.", default=False),
    "wait_ip_timeout": Param(N, "Seconds to wait for the address.", default=600),
}
GUEST = {
    "hostname": Param(S, "Guest host name (default: the VM name)."),
    "ip": Param(S, "IPv4 address of the first NIC as CIDR, or dhcp (default: DHCP)."),
    "gateway": Param(S, "IPv4 default gateway."),
    "ip6": Param(S, "IPv6 address of the first NIC as CIDR, or dhcp."),
    "gateway6": Param(S, "IPv6 default gateway."),
    "dns": Param(A, "DNS servers."),
    "search": Param(A, "DNS search domains."),
    "user": Param(S, "The login user cloud-init creates.", default="ubuntu"),
    "ssh_key": Param(A, "Authorized SSH public key lines (not file names)."),
    "package": Param(A, "Packages to install on first boot."),
    "userdata": Param(
        S,
        "Extra #cloud-config merged into ceso's userdata (the document itself).",
        max_length=MAX_DOCUMENT_FILE,
    ),
    "vendordata": Param(
        S, "cloud-init vendordata, passed through (the document itself).", max_length=MAX_DOCUMENT_FILE
    ),
}


def _hardware(p: dict[str, Any]) -> Any:
    from ceso.vm.requests import HardwareOptions

    return HardwareOptions(
        cpus=p["cpus"],
        memory=p["memory"],
        disk=p["disk"],
        datastore=p["datastore"],
        network=p["network"],
        power_on=not p["no_power_on"],
        wait_ip=p["wait_ip"],
        wait_ip_timeout_s=float(p["wait_ip_timeout"]),
    )


@contextmanager
def guest_options(p: dict[str, Any]) -> Iterator[Any]:
    """GuestOptions for the request builders; documents go through a private temporary file."""
    from ceso.cloudinit.nicargs import split_list
    from ceso.cloudinit.sshkeys import SSH_KEY_TYPES
    from ceso.vm.requests import GuestOptions

    for key in p["ssh_key"] or []:
        if not any(word in SSH_KEY_TYPES or word == "ssh-dss" for word in key.split()):
            raise InvalidInputError(f"ssh_key {key[:40]!r}: give public key lines (cesod reads no files)")
    with tempfile.TemporaryDirectory(prefix="cesod-") as tmp:  # mode 0700, removed on exit
        paths: dict[str, str | None] = {}
        for name in ("userdata", "vendordata"):
            paths[name] = None
            if p[name] is not None:
                path = paths[name] = os.path.join(tmp, name)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(p[name])
        yield GuestOptions(
            hostname=p["hostname"],
            ip=p["ip"],
            gateway=p["gateway"],
            ip6=p["ip6"],
            gateway6=p["gateway6"],
            dns=tuple(split_list(tuple(p["dns"] or ()))),
            search=tuple(split_list(tuple(p["search"] or ()))),
            user=p["user"],
            ssh_keys=tuple(p["ssh_key"] or ()),
            packages=tuple(p["package"] or ()),
            userdata_file=paths["userdata"],
            vendordata_file=paths["vendordata"],
        )


def vm_list(call: Call, p: dict[str, Any]) -> Any:
    from ceso.inventory import list_all_vms

    return [v.to_dict() for v in list_all_vms(call.runtime, p["host"])]


def vm_info(call: Call, p: dict[str, Any]) -> Any:
    from ceso.inventory import vm_details

    return vm_details(call.runtime, p["name"], p["host"]).to_dict()


def vm_create(call: Call, p: dict[str, Any]) -> Any:
    from ceso.cli.vm.create import CREATE_PLAN
    from ceso.vm.requests import create_request

    with guest_options(p) as guest:
        request, documents = create_request(
            call.runtime,
            name=p["name"],
            template=p["template"],
            host=p["host"],
            hw=_hardware(p),
            guest=guest,
            force=p["force"],
            idempotency_key=p["idempotency_key"],
        )
    return submit_and_report(call, request, p, plan=CREATE_PLAN, documents=documents)


def vm_clone(call: Call, p: dict[str, Any]) -> Any:
    from ceso.cli.vm.clone import CLONE_PLAN
    from ceso.vm.requests import clone_request

    with guest_options(p) as guest:
        request, documents = clone_request(
            call.runtime,
            source=p["source"],
            name=p["name"],
            host=p["host"],
            hw=_hardware(p),
            guest=guest,
            hot=p["hot"],
            shutdown_source=p["shutdown_source"],
            idempotency_key=p["idempotency_key"],
        )
    return submit_and_report(call, request, p, plan=CLONE_PLAN, documents=documents)


def vm_power(call: Call, p: dict[str, Any]) -> Any:
    from ceso.cli.vm.power import PLANS
    from ceso.vm.lifecycle import power_request

    request = power_request(
        call.runtime,
        action=p["action"],
        name=p["name"],
        host=p["host"],
        force=p["force"],
        timeout_guest_s=float(p["timeout_guest"]),
        idempotency_key=p["idempotency_key"],
    )
    return submit_and_report(call, request, p, plan=PLANS[p["action"]])


def disk_grow_pairs(entries: list[str] | None) -> tuple[tuple[str, str], ...]:
    """``disk_grow`` entries ``DISK=SIZE`` as the CLI's ``--disk-grow DISK SIZE`` pairs (split at the last ``=``)."""
    pairs = []
    for entry in entries or []:
        disk, sep, size = entry.rpartition("=")
        if not sep or not disk.strip() or not size.strip():
            raise InvalidInputError(
                f"disk_grow entry {entry!r} is not DISK=SIZE (e.g. 1=40G or 'Hard disk 2=100G')"
            )
        pairs.append((disk, size))
    return tuple(pairs)


def vm_reconfigure(call: Call, p: dict[str, Any]) -> Any:
    from ceso.cli.vm.reconfigure import RECONFIGURE_PLAN
    from ceso.vm.reconfigure import ReconfigureOptions, reconfigure_request

    options = ReconfigureOptions(
        cpus=p["cpus"],
        memory=p["memory"],
        disk_grow=disk_grow_pairs(p["disk_grow"]),
        network=p["network"],
        nic=p["nic"],
        iso=p["iso"],
        eject_iso=p["eject_iso"],
    )
    request, changes = reconfigure_request(
        call.runtime, name=p["name"], host=p["host"], options=options, idempotency_key=p["idempotency_key"]
    )
    return submit_and_report(call, request, p, plan=[*RECONFIGURE_PLAN, *(f"  {c}" for c in changes)])


def vm_snapshot_create(call: Call, p: dict[str, Any]) -> Any:
    from ceso.cli.vm.snapshot.create import CREATE_PLAN
    from ceso.vm.snapshot_requests import snapshot_create_request

    request = snapshot_create_request(
        call.runtime,
        name=p["name"],
        snapshot=p["snapshot"],
        description=p["description"],
        memory=p["memory"],
        quiesce=p["quiesce"],
        host=p["host"],
        idempotency_key=p["idempotency_key"],
    )
    return submit_and_report(call, request, p, plan=CREATE_PLAN)


def vm_snapshot_list(call: Call, p: dict[str, Any]) -> Any:
    from ceso.vm.snapshot_requests import list_snapshots

    return list_snapshots(call.runtime, name=p["name"], host=p["host"])


def vm_snapshot_revert(call: Call, p: dict[str, Any]) -> Any:
    from ceso.cli.vm.snapshot.revert import REVERT_PLAN
    from ceso.vm.snapshot_requests import snapshot_revert_request

    request = snapshot_revert_request(
        call.runtime,
        name=p["name"],
        snapshot=p["snapshot"],
        host=p["host"],
        idempotency_key=p["idempotency_key"],
    )
    return submit_and_report(call, request, p, plan=REVERT_PLAN)


def vm_snapshot_delete(call: Call, p: dict[str, Any]) -> Any:
    from ceso.cli.vm.snapshot.delete import DELETE_PLAN
    from ceso.vm.snapshot_requests import snapshot_delete_request

    request = snapshot_delete_request(
        call.runtime,
        name=p["name"],
        snapshot=p["snapshot"],
        children=p["children"],
        host=p["host"],
        idempotency_key=p["idempotency_key"],
    )
    return submit_and_report(call, request, p, plan=DELETE_PLAN)


def vm_delete(call: Call, p: dict[str, Any]) -> Any:
    from ceso.cli.vm.delete import DELETE_PLAN
    from ceso.vm.lifecycle import delete_request

    request = delete_request(
        call.runtime, name=p["name"], host=p["host"], force=p["force"], idempotency_key=p["idempotency_key"]
    )
    return submit_and_report(call, request, p, plan=DELETE_PLAN)


_NAME = {"name": Param(S, "The VM's name.", required=True)}
_FORCE_CREATE = {"force": Param(B, "Use a template that failed validation.", default=False)}
_SNAPSHOT = {"snapshot": Param(S, "The snapshot's name.", required=True)}

VM_METHODS = [
    Method("vm.list", "List VMs (one property-collector round trip per host).", HOST, vm_list),
    Method("vm.info", "Show one VM.", {**_NAME, **HOST}, vm_info),
    Method(
        "vm.create",
        "Create a VM from a template (a job).",
        {
            "name": Param(S, "Name of the new VM.", required=True),
            "template": Param(S, "Registered template to copy.", required=True),
            "host": Param(S, "Host of the template (optional when the template name is unique)."),
            **_FORCE_CREATE,
            **HARDWARE,
            **GUEST,
            **JOB_PARAMS,
        },
        vm_create,
    ),
    Method(
        "vm.clone",
        "Clone a VM with a new identity (a job).",
        {
            "source": Param(S, "The VM to clone.", required=True),
            "name": Param(S, "Name of the new VM.", required=True),
            "host": Param(S, "Host of the source VM."),
            "hot": Param(B, "Clone a running source through a temporary snapshot.", default=False),
            "shutdown_source": Param(B, "Shut a running source down for the copy.", default=False),
            **HARDWARE,
            **GUEST,
            **JOB_PARAMS,
        },
        vm_clone,
    ),
    Method(
        "vm.power",
        "Power a VM on, off, reset, shut down or reboot (a job).",
        {
            "action": Param(
                S, "What to do.", required=True, enum=("on", "off", "shutdown", "reboot", "reset")
            ),
            **_NAME,
            **HOST,
            "force": Param(B, "shutdown: power off if the guest does not stop in time.", default=False),
            "timeout_guest": Param(N, "shutdown: seconds to wait for the guest.", default=300),
            **JOB_PARAMS,
        },
        vm_power,
    ),
    Method(
        "vm.reconfigure",
        "Change a VM's CPUs, memory, disk sizes, NIC port group or ISO in one reconfigure task (a job).",
        {
            **_NAME,
            **HOST,
            "cpus": Param(INT, "Virtual CPUs (on a running VM only with CPU hot-add)."),
            "memory": Param(S, "Memory, e.g. 4G or 4096 (MiB); a running VM needs memory hot-add."),
            "disk_grow": Param(
                A,
                "Disks to grow, each DISK=SIZE (split at the last =): DISK is a number from 1 or a label "
                "such as 'Hard disk 2', e.g. ['1=40G', 'Hard disk 2=100G']; never shrinks.",
            ),
            "network": Param(S, "Move a NIC to this port group."),
            "nic": Param(INT, "The NIC network moves, numbered from 1 (default: the first)."),
            "iso": Param(S, "Attach an ISO from a datastore, e.g. '[datastore1] iso/ubuntu.iso'."),
            "eject_iso": Param(B, "Eject the ISO from the CD-ROM.", default=False),
            **JOB_PARAMS,
        },
        vm_reconfigure,
    ),
    Method(
        "vm.snapshot.create",
        "Take a snapshot of a VM; the name must be new on that VM (a job).",
        {
            **_NAME,
            **_SNAPSHOT,
            **HOST,
            "description": Param(S, "Free text kept with the snapshot.", default=""),
            "memory": Param(B, "Include the running VM's memory.", default=False),
            "quiesce": Param(B, "Quiesce the guest file systems first (needs VMware Tools).", default=False),
            **JOB_PARAMS,
        },
        vm_snapshot_create,
    ),
    Method(
        "vm.snapshot.list",
        "A VM's snapshots, parents before children (a direct read, not a job).",
        {**_NAME, **HOST},
        vm_snapshot_list,
    ),
    Method(
        "vm.snapshot.revert",
        "Revert a VM to a snapshot; changes since are lost, the VM takes the snapshot's power state (a job).",
        {**_NAME, **_SNAPSHOT, **HOST, **JOB_PARAMS},
        vm_snapshot_revert,
    ),
    Method(
        "vm.snapshot.delete",
        "Delete a snapshot of a VM; its changes are kept in the VM (a job).",
        {
            **_NAME,
            **_SNAPSHOT,
            **HOST,
            "children": Param(B, "Delete the snapshots below it too.", default=False),
            **JOB_PARAMS,
        },
        vm_snapshot_delete,
    ),
    Method(
        "vm.delete",
        "Delete a VM and all its files (a job; cannot be undone).",
        {
            **_NAME,
            **HOST,
            "force": Param(B, "Power the VM off first if it is running.", default=False),
            **JOB_PARAMS,
        },
        vm_delete,
    ),
]
