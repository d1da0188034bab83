"""``vm.clone``: a new VM with a new identity from an existing VM, cold or hot."""

from __future__ import annotations

from typing import Any

from ceso.jobs.context import JobContext
from ceso.operations.provision import ProvisionOptions, provision


def run_vm_clone(ctx: JobContext) -> dict[str, Any]:
    params = ctx.params
    result = provision(
        ctx,
        source_name=params["source"],
        opts=ProvisionOptions.from_params(params),
        hot=bool(params.get("hot")),
        shutdown_source=bool(params.get("shutdown_source")),
    )
    return {**result, "source": params["source"]}
