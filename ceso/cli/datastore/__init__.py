"""``ceso datastore``: files on a host's datastores (each subcommand imported when used)."""

from __future__ import annotations

import click

from ceso.cli.lazy import LazyGroup

_COMMANDS = {
    "ls": "ceso.cli.datastore.ls:ls",
    "upload": "ceso.cli.datastore.upload:upload",
    "download": "ceso.cli.datastore.download:download",
    "rm": "ceso.cli.datastore.rm:rm",
}


@click.group(cls=LazyGroup, lazy_commands=_COMMANDS)
def datastore() -> None:
    """List, upload, download and remove files on a host's datastores, without a VM or a job.

    \b
    A location is HOST:[DATASTORE] then a path inside that datastore:
      ceso datastore upload ubuntu.iso 'esxi-a:[datastore1]' iso/ubuntu.iso
    Paths stay inside the datastore (no '..', no absolute path). Uploads land
    under a temporary name and are renamed into place once complete. The host's
    route is used: the vSphere API's file service, or SFTP on the SSH route.
    """
