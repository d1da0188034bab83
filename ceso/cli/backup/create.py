"""``ceso backup create``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.options import job_options
from ceso.cli.via_cesod import via_local_cesod

CREATE_PLAN = [
    "lock the VM and a slot of the target",
    "catalog the set as pending",
    "stream the .vmx and .nvram over /folder (sha256, compression, encryption) to the target",
    "hot: VirtualMachine.CreateSnapshot_Task (no memory, quiesced if Tools run), removed afterwards, always",
    "cold on a running VM (--cold): guest shutdown, power back on afterwards, always",
    "stream each disk's descriptor and data to the target",
    "write manifest.json, confirm every size at the target, catalog the set as completed",
]


@click.command()
@click.argument("vm")
@click.option("--host", help="Host of the VM (optional when its name is unique).")
@click.option("--target", help="Backup target (default: backups.default_target).")
@click.option("--compress", "compression", type=click.Choice(["zstd", "gzip", "none"]), help="Default: zstd.")
@click.option("--level", type=int, help="Compression level (zstd 1-22, gzip 1-9).")
@click.option("--hot/--cold", "hot", default=None, help="Default: hot if the VM runs, else cold.")
@click.option(
    "--encrypt", is_flag=True, help="AES-256-GCM with the key in the secret store (made if missing)."
)
@job_options
@via_local_cesod
@pass_app
def create(
    app: Application,
    /,
    vm: str,
    host: str | None,
    target: str | None,
    compression: str | None,
    level: int | None,
    hot: bool | None,
    encrypt: bool,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Back up VM to a target as a set of compressed files and a manifest.

    Hot (a running VM): a temporary snapshot keeps the disks still and is always
    removed; your own snapshots are never touched. --cold on a running VM shuts
    it down for the copy and powers it back on.
    """
    from ceso.backup.requests import create_request

    request = create_request(
        app.runtime,
        vm=vm,
        host=host,
        target=target,
        compression=compression,
        level=level,
        mode=None if hot is None else ("hot" if hot else "cold"),
        encrypt=encrypt,
        idempotency_key=idempotency_key,
    )
    app.submit(request, wait=wait, timeout=timeout, plan=CREATE_PLAN)
