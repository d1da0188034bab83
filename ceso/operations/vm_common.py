"""What the jobs on an existing VM share: the re-checks under the lock, redelivery."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ceso.backends.protocol import AnyBackend
from ceso.jobs.context import JobContext
from ceso.plans import Step
from ceso.vm.guards import refuse_template

__all__ = ["earlier_attempt_ran", "inspect_vm"]


def inspect_vm(ctx: JobContext, ops: AnyBackend, name: str, props: list[str]) -> tuple[Any, dict[str, Any]]:
    """Find VM ``name`` again and read ``props`` (plus power state); refuse a template.

    Meant for the first step under the VM lock: what the CLI checked may have
    changed since. Raises NotFoundError, ConflictError (template, duplicate name).
    """
    vm = ops.find(name)
    row = ops.props(vm, ["runtime.powerState", "config.template", *props])
    with Session(ctx.runtime.engine) as session:
        refuse_template(session, host=ctx.job.host, name=name, marked=bool(row.get("config.template", False)))
    return vm, row


def earlier_attempt_ran(ctx: JobContext, step: Step) -> bool:
    """True if an earlier delivery of this job started ``step`` (ask before this attempt runs it).

    A job redelivered after its worker died may find its change already made;
    this tells "done by us" apart from "refused".
    """
    return ctx.attempt > 1 and step.ran_in(ctx.steps)
