"""A validated ``vm.reconfigure`` request from its spec.

Checked before any job exists: the spec's form (:class:`ceso.vm.change_specs.ReconfigureVm`:
at least one change, the CPU count, sizes, the ISO path), that the ISO file is on the
datastore, then — against the VM read from its host — everything
:func:`ceso.vm.hardware.plan_reconfigure` checks (shrink, hot-add, disk and
NIC numbers, the port group). The worker plans again under the VM lock.
"""

from __future__ import annotations

from sqlmodel import Session

from ceso.backends.api import ApiVmBackend
from ceso.errors import NotFoundError
from ceso.hosts.registry import client_for
from ceso.jobs.request import JobRequest
from ceso.runtime import Runtime
from ceso.vm.change_specs import ReconfigureVm
from ceso.vm.guards import refuse_template
from ceso.vm.hardware import HARDWARE_PROPERTIES, plan_reconfigure
from ceso.vm.lifecycle import resolve_vm, resubmission

__all__ = ["reconfigure_request"]


def reconfigure_request(
    runtime: Runtime, spec: ReconfigureVm, *, idempotency_key: str | None
) -> tuple[JobRequest, list[str]]:
    """A validated ``vm.reconfigure`` request and the changes it makes as the VM stands now.

    Raises InvalidInputError (form, shrink, disk or NIC number), NotFoundError
    (host, VM, network, datastore, ISO file), ConflictError (template,
    hot-add disabled, snapshots under a disk to grow, no CD-ROM slot).
    """
    name, changes, params = spec.name, spec.changes, spec.job_params()
    same = {key: value for key, value in params.items() if key not in ("name", "host")}
    again = resubmission(runtime, idempotency_key, kind=spec.kind, name=name, host=spec.host, **same)
    if again is not None:
        return again, []
    target = resolve_vm(runtime, name, spec.host, HARDWARE_PROPERTIES)
    with Session(runtime.engine) as session:
        refuse_template(session, host=target.host, name=name, marked=target.marked_template)
    ops = ApiVmBackend(client_for(runtime, target.host))  # reads only: the API reads on every license
    networks = ops.networks(want=changes.network) if changes.network is not None else []
    plan = plan_reconfigure(target.props, changes, networks=networks, host=target.host, name=name)
    if changes.iso is not None and not ops.path_exists(changes.iso):
        raise NotFoundError(f"no file {changes.iso} on host {target.host}")
    request = JobRequest(
        kind=spec.kind, host=target.host, target=name, params=params, idempotency_key=idempotency_key
    )
    return request, plan.changes or ["nothing: the VM already is as asked"]
