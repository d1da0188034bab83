"""``ceso vm create``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch
from ceso.cli.vm_options import guest_options, hardware_options, read_guest_files_of

if TYPE_CHECKING:
    from ceso.vm.specs import CreateVm

SPEC = "ceso.vm.specs:CreateVm"


@click.command()
@spec_argument("name")
@spec_options(
    SPEC,
    template={},
    blank={"is_flag": True},
    iso={"metavar": "'[DS] PATH.iso'"},
    guest_id={"metavar": "ID"},
    host={},
    force={"is_flag": True},
)
@hardware_options(SPEC)
@guest_options(SPEC)
@job_options
@dispatch(SPEC, read_guest_files_of)
@pass_app
def create(app: Application, /, spec: CreateVm, job: JobOptions) -> None:
    """Create VM NAME from a template: disks copied on the host, a new identity, cloud-init network.

    The guest gets a fresh instance-id, its host name and, on its first NIC
    (matched by MAC), --ip/--gateway, --ip6/--gateway6 or DHCP.

    With --blank instead of --template: an empty VM to install from an ISO
    (--host, --cpus, --memory and --disk required; --iso '[DS] path.iso'
    connected at power-on), through the vSphere API only.
    """
    from ceso.vm.requests import create_request

    request, documents = create_request(app.runtime, spec, idempotency_key=job.idempotency_key)
    app.submit_spec(spec, request, job, documents=documents)
