"""``ceso vm delete``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options
from ceso.cli.prompts import confirm_or_refuse
from ceso.cli.via_cesod import via_local_cesod

DELETE_PLAN = [
    "refuse a registered template, a protected VM, a VM with another job in flight",
    "lock the VM and a slot on its datastore; check all of that again",
    "VirtualMachine.PowerOffVM_Task (only with --force, if the VM is not powered off)",
    "VirtualMachine.Destroy_Task: unregister the VM and delete its files (.vmx, disks, logs, nvram)",
    "HostDatastoreBrowser.SearchDatastore_Task: report whether the VM's folder is gone",
]


@click.command()
@click.argument("name")
@click.option("--host", help="The VM's host (optional when the name is unique across hosts).")
@click.option("--force", is_flag=True, help="Power the VM off first if it is running.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@job_options
@via_local_cesod
@pass_app
def delete(
    app: Application,
    /,
    name: str,
    host: str | None,
    force: bool,
    yes: bool,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Delete VM NAME and all its files from its host. Cannot be undone.

    Refused for a registered template, a VM marked by `ceso vm protect`, a VM
    with another job queued or running, and (without --force) a VM that is
    not powered off.
    """
    from ceso.vm.lifecycle import delete_request

    request = delete_request(app.runtime, name=name, host=host, force=force, idempotency_key=idempotency_key)
    if not app.dry_run:
        files = "\n  ".join(request.params.get("files") or [])
        confirm_or_refuse(
            app,
            f"Delete VM {name} on host {request.host} and its files?\n  {files}\n",
            yes=yes,
            what=f"delete VM {name} on host {request.host}",
        )
    app.submit(request, wait=wait, timeout=timeout, plan=DELETE_PLAN)
