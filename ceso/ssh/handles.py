"""The SSH route's handles: a registered VM (:class:`SshVm`) and one of its snapshots (:class:`SshSnapshot`).

Plain values with no host access, shared by :mod:`ceso.backends.ssh` and
:mod:`ceso.backends.ssh_lifecycle`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from ceso.ssh import commands as cmd

__all__ = ["SshSnapshot", "SshVm"]


@dataclass(frozen=True)
class SshVm:
    """A registered VM as the SSH route knows it."""

    vmid: int
    name: str
    vmx_path: str  # "[ds] dir/name.vmx"

    @property
    def vmfs_path(self) -> str:
        return cmd.from_datastore_path(self.vmx_path)

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.vmfs_path)


@dataclass(frozen=True)
class SshSnapshot:
    """A snapshot by VM and id (what ``snapshot.remove`` takes)."""

    vm: SshVm
    id: int
    name: str
