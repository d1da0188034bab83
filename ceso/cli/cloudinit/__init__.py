"""``ceso cloudinit``: preview guestinfo documents."""

from __future__ import annotations

from typing import Any

import click

from ceso.cli.application import Application, pass_app
from ceso.cli.vm_options import guest_options, read_guest_files_of
from ceso.vm.sizes import MAX_NICS


@click.group()
def cloudinit() -> None:
    """Preview the cloud-init documents ceso writes into guestinfo."""


@cloudinit.command()
@click.argument("name")
@click.option(
    "--nics", type=click.IntRange(1, MAX_NICS), default=1, show_default=True, help="NICs the VM will have."
)
@guest_options("ceso.vm.specs:GuestIdentity")
@pass_app
def render(app: Application, /, name: str, nics: int, **kw: Any) -> None:
    """Print the decoded metadata and userdata a VM named NAME would get (placeholder MACs)."""
    from ceso.vm.specs import GuestIdentity

    fields = {key: value for key, value in read_guest_files_of(kw).items() if value is not None}
    documents = GuestIdentity.parse(fields).guest.check(name, nics)
    app.emit(documents, lambda: app.show_documents(documents))
