"""``ceso backup create``."""

from __future__ import annotations

import click

from ceso.backup.specs import CreateBackup
from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_option, spec_options
from ceso.cli.via_cesod import dispatch


@click.command()
@spec_argument(CreateBackup, "vm")
@spec_options(CreateBackup, "host", "target")
@spec_option(CreateBackup, "compress", type=click.Choice(["zstd", "gzip", "none"]))
@spec_option(CreateBackup, "level")
@spec_option(CreateBackup, "hot", decl="--hot/--cold", default=None)
@spec_option(CreateBackup, "encrypt")
@job_options
@dispatch(CreateBackup.parse)
@pass_app
def create(app: Application, /, spec: CreateBackup, job: JobOptions) -> None:
    """Back up VM to a target as a set of compressed files and a manifest.

    Hot (a running VM): a temporary snapshot keeps the disks still and is always
    removed; your own snapshots are never touched. --cold on a running VM shuts
    it down for the copy and powers it back on.
    """
    from ceso.backup.requests import create_request

    app.submit_spec(spec, create_request(app.runtime, spec, idempotency_key=job.idempotency_key), job)
