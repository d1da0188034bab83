"""``vm.clone``: a new VM with a new identity from an existing VM, cold or hot."""

from __future__ import annotations

from typing import Any

from ceso.jobs.context import JobContext
from ceso.operations.provision import ProvisionOptions, provision
from ceso.vm.specs import CloneVm


def run_vm_clone(ctx: JobContext) -> dict[str, Any]:
    spec = CloneVm.from_job(ctx.params)
    result = provision(
        ctx,
        source_name=spec.source,
        opts=ProvisionOptions.from_spec(spec, name=spec.name),
        hot=spec.hot,
        shutdown_source=spec.shutdown_source,
    )
    return {**result, "source": spec.source}
