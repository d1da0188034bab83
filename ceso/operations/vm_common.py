"""What the jobs on an existing VM share: the re-checks under the lock, redelivery."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ceso.backends.protocol import AnyBackend
from ceso.jobs.context import JobContext
from ceso.jobs.retry import retry_host
from ceso.plans import Step
from ceso.vm.guards import refuse_template

__all__ = ["earlier_attempt_ran", "inspect_vm", "open_and_inspect", "recorded"]


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


def open_and_inspect(
    ctx: JobContext, step: Step, name: str, props: list[str]
) -> tuple[AnyBackend, Any, dict[str, Any]]:
    """The host's backend (its session opened: the login), then :func:`inspect_vm`; tried again
    after a transient host fault as ``step`` (declared ``retried``) says. Only reads."""

    def read(_try: int) -> tuple[AnyBackend, Any, dict[str, Any]]:
        ops = ctx.backend()  # the route the host's record declares (ceso.backends.routes)
        vm, row = inspect_vm(ctx, ops, name, props)
        return ops, vm, row

    return retry_host(ctx, step, read)


def earlier_attempt_ran(ctx: JobContext, step: Step) -> bool:
    """True if an earlier delivery of this job started ``step`` (ask before this attempt runs it).

    A job redelivered after its worker died may find its change already made;
    this tells "done by us" apart from "refused".
    """
    return ctx.attempt > 1 and step.ran_in(ctx.steps)


def recorded(steps: list[dict[str, Any]], step: Step, key: str) -> Any:
    """What the last record of ``step`` in ``steps`` noted under ``key`` (None if none did)."""
    for record in reversed(steps):
        if step.matches(str(record.get("name"))) and key in record:
            return record[key]
    return None
