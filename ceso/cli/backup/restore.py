"""``ceso backup restore``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import JobOptions, job_options
from ceso.cli.spec_options import spec_argument, spec_options
from ceso.cli.via_cesod import dispatch
from ceso.cli.vm_options import guest_options, read_guest_files_of

if TYPE_CHECKING:
    from ceso.backup.specs import RestoreBackup

SPEC = "ceso.backup.specs:RestoreBackup"


def restore_params(params: dict[str, Any]) -> dict[str, Any]:
    """The spec's fields (key and document files read; ``--yes`` is the CLI's own)."""
    return read_guest_files_of({key: value for key, value in params.items() if key != "yes"})


@click.command()
@spec_argument("backup_id")
@spec_options(
    SPEC,
    as_={},
    in_place={"is_flag": True},
    host={},
    datastore={},
    network={"metavar": "PORTGROUP"},
    no_power_on={"is_flag": True},
)
@click.option("--yes", is_flag=True, help="With --in-place: do not ask for confirmation.")
@guest_options(SPEC)
@job_options
@dispatch(SPEC, restore_params, here=lambda params: bool(params["in_place"]))  # the CLI asks first
@pass_app
def restore(app: Application, /, spec: RestoreBackup, job: JobOptions) -> None:
    """Restore backup BACKUP_ID as a new VM with a new UUID, new MACs and a new cloud-init identity.

    The first NIC gets --ip/--gateway, --ip6/--gateway6 or DHCP, as with `vm create`.
    With --in-place instead, the original VM (powered off, same disks) gets its disk and
    NVRAM files back and keeps its identity.
    """
    from ceso.backup.requests import restore_request

    request, documents = restore_request(app.runtime, spec, idempotency_key=job.idempotency_key)
    if spec.in_place and not app.dry_run and not click.get_current_context().params["yes"]:
        if not app.interactive:
            from ceso.errors import InvalidInputError

            raise InvalidInputError("--in-place overwrites the VM's disks: confirm with --yes")
        click.confirm(f"overwrite the disks of VM {request.target} with backup {spec.backup_id}?", abort=True)
    app.submit_spec(spec, request, job, documents=documents)
