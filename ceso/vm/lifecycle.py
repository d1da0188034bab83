"""Validated requests for jobs on an existing VM: delete and power (reconfigure and snapshots build on this).

Everything that can be checked before a job exists is checked here, so bad
input is refused with nothing written (no job row, nothing on the host): the
VM name, the host, that the VM exists (on ``--host``, or on the only
registered host that has it), that it is not a template, not protected, has
no other job in flight, and is in a power state the action allows. The
workers check the host state and SQL again under the VM lock.

Re-submitting an idempotency key returns the first job's request unchanged,
without checking the VM again (the first job may well have deleted it); the
same key with a different VM or action is a ConflictError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from ceso.backends.vmomi import vim
from ceso.errors import ConflictError
from ceso.esxi.inventory import find_vm
from ceso.hosts.registry import client_for
from ceso.inventory import find_vm_host
from ceso.jobs.request import JobRequest
from ceso.jobs.store import find_by_idempotency_key
from ceso.runtime import Runtime
from ceso.vm.change_specs import DeleteVm, PowerVm
from ceso.vm.guards import refuse_in_flight, refuse_protected, refuse_template
from ceso.vm.names import validate_vm_name
from ceso.vm.power import check_power_action

__all__ = ["VmTarget", "delete_request", "power_request", "resolve_vm", "resubmission", "vm_files"]

BASE_PROPERTIES = ["runtime.powerState", "config.template"]


@dataclass(frozen=True)
class VmTarget:
    """An existing VM found on its host, with the properties a builder asked for."""

    host: str
    name: str
    props: dict[str, Any]

    @property
    def power_state(self) -> str:
        return str(self.props.get("runtime.powerState"))

    @property
    def marked_template(self) -> bool:
        return bool(self.props.get("config.template", False))


def resolve_vm(runtime: Runtime, name: str, host: str | None, props: Sequence[str] = ()) -> VmTarget:
    """Find VM ``name`` and read ``props`` (plus power state and template flag) in one round trip.

    Raises InvalidInputError for a bad name, NotFoundError for an unknown host
    or VM, ConflictError when the name is on several hosts and ``host`` is None.
    """
    validate_vm_name(name)
    owner = find_vm_host(runtime, name, host)
    client = client_for(runtime, owner)
    row = client.retrieve_object(find_vm(client, name), [*BASE_PROPERTIES, *props])
    return VmTarget(owner, name, row)


def resubmission(
    runtime: Runtime, idempotency_key: str | None, *, kind: str, name: str, host: str | None, **same: Any
) -> JobRequest | None:
    """The first job's request if ``idempotency_key`` was used already, else None.

    ConflictError if that job was for another kind, VM, host or any of the
    ``same`` parameters (e.g. a different power action).
    """
    if idempotency_key is None:
        return None
    job = find_by_idempotency_key(runtime.engine, idempotency_key)
    if job is None:
        return None
    params = job.params or {}
    if (
        job.kind != kind
        or job.target != name
        or (host is not None and job.host != host)
        or any(params.get(k) != v for k, v in same.items())
    ):
        raise ConflictError(
            f"idempotency key {idempotency_key!r} was already used by job {job.id} for a different request"
        )
    return JobRequest(
        kind=job.kind,
        host=job.host,
        target=job.target,
        params=params,
        idempotency_key=idempotency_key,
        actor=job.actor,
    )


def delete_request(
    runtime: Runtime, spec: DeleteVm, *, idempotency_key: str | None
) -> tuple[JobRequest, list[str]]:
    """A validated ``vm.delete`` request and the files Destroy_Task will remove (none listed for
    a resubmitted idempotency key: its first job is followed).

    Refuses a registered template (ConflictError), a protected VM
    (NotPermittedError), a VM with another job in flight (ConflictError) and,
    without ``force``, a VM that is not powered off (ConflictError).
    """
    name, force = spec.name, spec.force
    again = resubmission(runtime, idempotency_key, kind=spec.kind, name=name, host=spec.host)
    if again is not None:
        return again, []
    target = resolve_vm(runtime, name, spec.host, ["summary.config.vmPathName", "config.hardware.device"])
    with Session(runtime.engine) as session:
        refuse_template(session, host=target.host, name=name, marked=target.marked_template)
        refuse_protected(session, host=target.host, name=name)
        refuse_in_flight(session, host=target.host, name=name)
    if target.power_state != "poweredOff" and not force:
        raise ConflictError(
            f"VM {name!r} on host {target.host} is {target.power_state}: "
            "power it off first or pass --force to power it off"
        )
    request = JobRequest(
        kind=spec.kind,
        host=target.host,
        target=name,
        params=spec.job_params(),
        idempotency_key=idempotency_key,
    )
    return request, vm_files(target.props)


def vm_files(props: dict[str, Any]) -> list[str]:
    """The .vmx and every disk backing file: what Destroy_Task deletes (disks outside the VM's folder too)."""
    files = [str(props["summary.config.vmPathName"])] if props.get("summary.config.vmPathName") else []
    disk_type = vim().vm.device.VirtualDisk
    for dev in props.get("config.hardware.device") or []:
        path = getattr(dev.backing, "fileName", None) if isinstance(dev, disk_type) else None
        if path:
            files.append(str(path))
    return files


def power_request(runtime: Runtime, spec: PowerVm, *, idempotency_key: str | None) -> JobRequest:
    """A validated ``vm.power`` request (see :mod:`ceso.vm.power` for what each action allows).

    ``force`` (shutdown only) powers the VM off when the guest does not shut down within
    ``timeout_guest`` seconds. Raises NotFoundError, ConflictError (template; reset/reboot of
    a VM that is not running).
    """
    name, action = spec.name, spec.action
    again = resubmission(runtime, idempotency_key, kind=spec.kind, name=name, host=spec.host, action=action)
    if again is not None:
        return again
    target = resolve_vm(runtime, name, spec.host)
    with Session(runtime.engine) as session:
        refuse_template(session, host=target.host, name=name, marked=target.marked_template)
    check_power_action(action, name=name, host=target.host, state=target.power_state)
    return JobRequest(
        kind=spec.kind,
        host=target.host,
        target=name,
        params=spec.job_params(),
        idempotency_key=idempotency_key,
    )
