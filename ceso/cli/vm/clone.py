"""``ceso vm clone``."""

from __future__ import annotations

from typing import Any

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch
from ceso.cli.vm_options import guest_options, hardware_options, read_guest_files_of
from ceso.vm.specs import CloneVm


def clone_spec(params: dict[str, Any]) -> CloneVm:
    """The command's options as its spec (key and document files read)."""
    return CloneVm.parse(read_guest_files_of(params))


@click.command()
@spec_argument(CloneVm, "source")
@spec_argument(CloneVm, "name")
@spec_options(CloneVm, "host", "hot", "shutdown_source")
@hardware_options(CloneVm)
@guest_options(CloneVm)
@job_options
@dispatch(clone_spec)
@pass_app
def clone(app: Application, /, spec: CloneVm, job: JobOptions) -> None:
    """Clone SOURCE to NAME with a new UUID, MACs, instance-id and host name; SOURCE is not changed.

    Cold by default: SOURCE must be powered off (or use --shutdown-source or --hot).
    """
    from ceso.vm.requests import clone_request

    request, documents = clone_request(app.runtime, spec, idempotency_key=job.idempotency_key)
    app.submit_spec(spec, request, job, documents=documents)
