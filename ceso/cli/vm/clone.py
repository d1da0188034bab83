"""``ceso vm clone``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch
from ceso.cli.vm_options import guest_options, hardware_options, read_guest_files_of

if TYPE_CHECKING:
    from ceso.vm.specs import CloneVm

SPEC = "ceso.vm.specs:CloneVm"


@click.command()
@spec_argument("source")
@spec_argument("name")
@spec_options(SPEC, host={}, hot={"is_flag": True}, shutdown_source={"is_flag": True})
@hardware_options(SPEC)
@guest_options(SPEC)
@job_options
@dispatch(SPEC, read_guest_files_of)
@pass_app
def clone(app: Application, /, spec: CloneVm, job: JobOptions) -> None:
    """Clone SOURCE to NAME with a new UUID, MACs, instance-id and host name; SOURCE is not changed.

    Cold by default: SOURCE must be powered off (or use --shutdown-source or --hot).
    """
    from ceso.vm.requests import clone_request

    request, documents = clone_request(app.runtime, spec, idempotency_key=job.idempotency_key)
    app.submit_spec(spec, request, job, documents=documents)
