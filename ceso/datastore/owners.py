"""Which registered VM a datastore path belongs to: ``datastore rm`` refuses to delete those.

A path belongs to a VM when it is the VM's folder (where its ``.vmx`` lives) or inside it, one of
its disks (descriptor or extent), or a folder holding any of these. Templates are VMs here too.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from ceso.backends.paths import split_datastore_path
from ceso.errors import InvalidInputError
from ceso.esxi.inventory import VmSummary

__all__ = ["owner_of"]


def _vm_paths(vm: VmSummary, datastore: str) -> tuple[list[str], list[str]]:
    """(folders whose whole content is the VM's, files of the VM) on ``datastore``."""
    folders: list[str] = []
    files: list[str] = []
    for value in [vm.vmx_path, *(d.path for d in vm.disks)]:
        if not value:
            continue
        try:
            ds, path = split_datastore_path(value)
        except InvalidInputError:
            continue
        if ds != datastore:
            continue
        files.append(path)
        if path.endswith(".vmdk"):
            files.append(path[: -len(".vmdk")] + "-flat.vmdk")
        if value == vm.vmx_path and posixpath.dirname(path):
            folders.append(posixpath.dirname(path))
    return folders, files


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def owner_of(path: str, datastore: str, vms: Iterable[VmSummary]) -> VmSummary | None:
    """The first VM of ``vms`` that ``path`` (relative to ``datastore``'s root) belongs to, or None.

    The root (``""``) holds every VM's files, so it belongs to the first VM with any there.
    """
    for vm in vms:
        folders, files = _vm_paths(vm, datastore)
        if any(_within(path, f) or _within(f, path) or not path for f in folders):
            return vm
        if any(_within(f, path) or not path for f in files):
            return vm
    return None
