"""``ceso vm reconfigure``."""

from __future__ import annotations

from typing import Any

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch
from ceso.vm.change_specs import ReconfigureVm


def reconfigure_spec(params: dict[str, Any]) -> ReconfigureVm:
    """The command's options as its spec: each ``--disk-grow DISK SIZE`` as ``DISK=SIZE``."""
    grows = [f"{disk}={size}" for disk, size in params["disk_grow"]]
    return ReconfigureVm.parse({**params, "disk_grow": grows})


@click.command()
@spec_argument(ReconfigureVm, "name")
@spec_options(
    ReconfigureVm,
    "host", "cpus", "memory", "disk_grow", "network", "nic", "iso", "eject_iso",
    memory={"metavar": "SIZE"},
    disk_grow={"nargs": 2, "metavar": "DISK SIZE"},
    network={"metavar": "PORTGROUP"},
    nic={"metavar": "N"},
    iso={"metavar": "'[DS] PATH'"},
)  # fmt: skip
@job_options
@dispatch(reconfigure_spec)
@pass_app
def reconfigure(app: Application, /, spec: ReconfigureVm, job: JobOptions) -> None:
    """Change VM NAME's CPUs, memory, disk sizes, NIC port group or ISO in one reconfigure task.

    A CD-ROM is added on the first IDE or SATA controller if the VM has none.
    """
    from ceso.vm.reconfigure import reconfigure_request

    request, changes = reconfigure_request(app.runtime, spec, idempotency_key=job.idempotency_key)
    app.submit_spec(spec, request, job, details=changes)
