"""``vm.create``: a new VM from a registered template (see :mod:`ceso.operations.provision`), or a
blank one (:mod:`ceso.operations.vm_blank`)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ceso.jobs.context import JobContext
from ceso.operations.provision import ProvisionOptions, provision
from ceso.vm.specs import CreateVm
from ceso.vm.templates import get_template, require_usable


def run_vm_create(ctx: JobContext) -> dict[str, Any]:
    spec = CreateVm.from_job(ctx.params)
    if spec.blank:
        from ceso.operations.vm_blank import run_blank_create

        return run_blank_create(ctx, spec)
    assert spec.template is not None  # the spec holds one of template and blank
    with Session(ctx.runtime.engine) as session:
        # Re-checked here, not only in the CLI: the template may have failed validation since.
        template = get_template(session, spec.template, ctx.job.host)
    require_usable(template, force=spec.force)
    result = provision(
        ctx,
        source_name=template.name,
        opts=ProvisionOptions.from_spec(spec, name=spec.name),
        lock_source=False,
    )
    return {**result, "template": template.name}
