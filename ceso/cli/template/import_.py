"""``ceso template import``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch

if TYPE_CHECKING:
    from ceso.images.specs import ImportTemplate

SPEC = "ceso.images.specs:ImportTemplate"


@click.command("import")
@spec_argument("name")
@spec_options(
    SPEC,
    host={"required": True},
    from_={"required": True, "metavar": "SOURCE"},
    datastore={},
    network={"metavar": "PORTGROUP"},
    sha256={"metavar": "HEX"},
)
@job_options
@dispatch(SPEC)
@pass_app
def import_(app: Application, /, spec: ImportTemplate, job: JobOptions) -> None:
    """Import SOURCE (an .ova, an .ovf with its disks, or a stream-optimized .vmdk; a path on the
    worker's machine or an https:// URL) as template NAME on a host.

    The package is refused before anything is made if it holds several VMs, a vApp property
    other than cloud-init's, or a disk that is not a stream-optimized VMDK. Disks land thin;
    the VM is registered as a template and validated. A failed import leaves nothing behind.
    """
    from ceso.images.requests import import_request

    app.submit_spec(spec, import_request(app.runtime, spec, idempotency_key=job.idempotency_key), job)
