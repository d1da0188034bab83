"""``ceso vm reconfigure``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch

if TYPE_CHECKING:
    from ceso.vm.change_specs import ReconfigureVm

SPEC = "ceso.vm.change_specs:ReconfigureVm"


def reconfigure_params(params: dict[str, Any]) -> dict[str, Any]:
    """The spec's fields: each ``--disk-grow DISK SIZE`` as ``DISK=SIZE``."""
    return {**params, "disk_grow": [f"{disk}={size}" for disk, size in params["disk_grow"]]}


@click.command()
@spec_argument("name")
@spec_options(
    SPEC,
    host={},
    cpus={"type": int},
    memory={"metavar": "SIZE"},
    disk_grow={"multiple": True, "nargs": 2, "metavar": "DISK SIZE"},
    network={"metavar": "PORTGROUP"},
    nic={"type": int, "metavar": "N"},
    iso={"metavar": "'[DS] PATH'"},
    eject_iso={"is_flag": True},
)
@job_options
@dispatch(SPEC, reconfigure_params)
@pass_app
def reconfigure(app: Application, /, spec: ReconfigureVm, job: JobOptions) -> None:
    """Change VM NAME's CPUs, memory, disk sizes, NIC port group or ISO in one reconfigure task.

    A CD-ROM is added on the first IDE or SATA controller if the VM has none.
    """
    from ceso.vm.reconfigure import reconfigure_request

    request, changes = reconfigure_request(app.runtime, spec, idempotency_key=job.idempotency_key)
    app.submit_spec(spec, request, job, details=changes)
