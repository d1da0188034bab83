"""``ceso backup drill``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch

if TYPE_CHECKING:
    from ceso.backup.specs import DrillBackup

SPEC = "ceso.backup.specs:DrillBackup"


@click.command()
@spec_argument("backup_id", required=False)
@spec_options(
    SPEC,
    vm={},
    host={},
    network={"metavar": "PORTGROUP"},
    boot_timeout={"type": float, "metavar": "SECONDS"},
)
@job_options
@dispatch(SPEC)
@pass_app
def drill(app: Application, /, spec: DrillBackup, job: JobOptions) -> None:
    """Prove a backup restores and boots: restore BACKUP_ID (or --vm VM's latest point) as a
    throwaway VM, power it on, wait for VMware Tools' heartbeat, record the outcome on the backup,
    and remove the VM whatever happened.

    The VM is named ceso-drill-VM-JOBID8. Its NICs are neither connected nor connected at power
    on; with --network the first one is connected to that port group (keep it isolated) and the
    drill waits for a guest IP too. A drill that fails (a damaged backup, no heartbeat within
    --boot-timeout) fails the job with the reason, and `backup list` shows it beside the backup.
    """
    from ceso.backup.requests import drill_request

    app.submit_spec(spec, drill_request(app.runtime, spec, idempotency_key=job.idempotency_key), job)
