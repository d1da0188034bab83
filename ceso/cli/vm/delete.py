"""``ceso vm delete``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.each_vm import each_vm
from ceso.cli.options import JobOptions, job_options
from ceso.cli.prompts import confirm_or_refuse
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch

if TYPE_CHECKING:
    from ceso.vm.change_specs import DeleteVm

SPEC = "ceso.vm.change_specs:DeleteVm"


def delete_params(params: dict[str, Any]) -> dict[str, Any]:
    """The spec's fields (``--yes`` is the CLI's own)."""
    return {key: value for key, value in params.items() if key != "yes"}


@click.command()
@spec_argument("name", nargs=-1)
@spec_options(SPEC, host={}, force={"is_flag": True})
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@job_options
@each_vm(confirm="delete")
@dispatch(SPEC, delete_params, here=lambda params: not params["yes"])  # the CLI asks before anything is sent
@pass_app
def delete(app: Application, /, spec: DeleteVm, job: JobOptions) -> None:
    """Delete VM NAME and all its files from its host. Cannot be undone.

    Refused for a registered template, a VM marked by `ceso vm protect`, a VM
    with another job queued or running, and (without --force) a VM that is
    not powered off.
    """
    from ceso.vm.lifecycle import delete_request

    request, files = delete_request(app.runtime, spec, idempotency_key=job.idempotency_key)
    if not app.dry_run:
        listed = "\n  ".join(files)
        confirm_or_refuse(
            app,
            f"Delete VM {spec.name} on host {request.host} and its files?\n  {listed}\n",
            yes=bool(click.get_current_context().params["yes"]),
            what=f"delete VM {spec.name} on host {request.host}",
        )
    app.submit_spec(spec, request, job)
