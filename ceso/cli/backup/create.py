"""``ceso backup create``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_option, spec_options
from ceso.cli.via_cesod import dispatch

if TYPE_CHECKING:
    from ceso.backup.specs import CreateBackup

SPEC = "ceso.backup.specs:CreateBackup"


@click.command()
@spec_argument("vm")
@spec_options(
    SPEC, host={}, target={}, compress={"type": click.Choice(["zstd", "gzip", "none"])}, level={"type": int}
)
@spec_option(SPEC, "hot", decl="--hot/--cold", default=None)
@spec_options(SPEC, encrypt={"is_flag": True}, incremental={"is_flag": True}, full_every={"type": int})
@job_options
@dispatch(SPEC)
@pass_app
def create(app: Application, /, spec: CreateBackup, job: JobOptions) -> None:
    """Back up VM to a target as a set of compressed files and a manifest.

    Hot (a running VM): a temporary snapshot keeps the disks still and is always
    removed; your own snapshots are never touched. --cold on a running VM shuts
    it down for the copy and powers it back on.

    On a licensed host ceso switches Changed Block Tracking on (when the VM has no
    snapshots) and reads only a disk's allocated areas. --incremental stores only
    the areas changed since the VM's last backup at the target; it makes a full
    instead, and says why, when that chain cannot be trusted.
    """
    from ceso.backup.requests import create_request

    app.submit_spec(spec, create_request(app.runtime, spec, idempotency_key=job.idempotency_key), job)
