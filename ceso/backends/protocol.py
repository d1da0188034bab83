"""The one interface every route to a host offers: :class:`VmBackend`, generic over its handles.

One narrow interface per external system. Three classes implement
it: :class:`ceso.backends.api.ApiVmBackend` (pyVmomi),
:class:`ceso.backends.ssh.SshVmBackend` (vim-cmd, vmkfstools, SFTP) and
:class:`ceso.backends.fake.FakeBackend` (in memory, for unit tests of step
logic). A job gets its backend from its context (``ctx.backend()``), never by
building one of these classes.

Handles are typed per backend: ``VmBackend[VmT, SnapshotT]``. A VM handle
(``VmT``) and a snapshot handle (``SnapshotT``) are opaque and belong to the
backend that returned them (a pyVmomi managed object on the API route,
:class:`ceso.ssh.handles.SshVm` over SSH); step code that serves every route
holds an :data:`AnyBackend`. Devices and specs are vSphere data objects on
every route (:mod:`ceso.backends.vmomi`).

What the routes share is not in the protocol but beside it, written once:
waiting for a power state or a guest address and guest shutdown
(:mod:`ceso.backends.guest`), datastore paths, MACs and "the one VM of this
name" (:mod:`ceso.backends.paths`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = [
    "CARRIED_BACKING_FIELDS",
    "CARRIED_EXTRA_CONFIG",
    "SOURCE_PROPERTIES",
    "AnyBackend",
    "Recorder",
    "VmBackend",
]

VmT = TypeVar("VmT")
SnapshotT = TypeVar("SnapshotT")

#: Where a backend reports each call before it makes it: ``record(method, args)`` (no secret in ``args``).
Recorder = Callable[[str, dict[str, Any]], None]

#: What provisioning reads of its source VM (:meth:`VmBackend.source_props`).
SOURCE_PROPERTIES = [
    "config.hardware.device",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.guestId",
    "config.firmware",
    "config.bootOptions.efiSecureBootEnabled",
    "config.hardware.numCoresPerSocket",
    "config.memoryAllocation.reservation",
    "config.cpuAllocation.reservation",
    "config.version",
    "config.extraConfig",
    "summary.config.vmPathName",
    "runtime.powerState",
]

#: The source's ``config.extraConfig`` keys a new VM keeps (case-insensitive, as in a .vmx): the
#: others are the source's own (its guestinfo, its job marker) and are not read or carried.
CARRIED_EXTRA_CONFIG = ("disk.EnableUUID",)

#: The fields of the source's CD-ROM or serial port backing a new VM keeps (those its class has).
CARRIED_BACKING_FIELDS = (
    "fileName",
    "deviceName",
    "pipeName",
    "endpoint",
    "serviceURI",
    "direction",
    "exclusive",
)


class VmBackend(Protocol[VmT, SnapshotT]):
    """VM operations on one host. Every method raises CesoErrors only and retries no write.

    Each call that changes the host is reported to the backend's recorder
    before it is made (vSphere method or shell command, no secret, no file
    contents). Errors are the same on every route: NotFoundError for a
    missing VM, datastore, network or file; ConflictError for a duplicate
    name or a VM in the wrong power state; OperationError
    (``not_supported_over_ssh``) for what a route cannot do.
    """

    @property
    def route(self) -> str:
        """``api``, ``ssh`` (or ``fake``): recorded on every step of the job."""
        ...

    @property
    def host(self) -> str:
        """The host's name, for messages."""
        ...

    # -- inventory -------------------------------------------------------------------------
    def find(self, name: str) -> VmT:
        """The VM named ``name``; NotFoundError, or ConflictError if several share it."""
        ...

    def exists(self, name: str) -> bool: ...

    def props(self, vm: VmT, props: list[str]) -> dict[str, Any]:
        """vSphere property paths of ``vm``; ones the route cannot know or that are unset are absent."""
        ...

    def source_props(self, vm: VmT) -> dict[str, Any]:
        """:data:`SOURCE_PROPERTIES` of ``vm`` as provisioning reads them.

        Its device list holds at least the controllers, disks and NICs, with
        at least the fields :mod:`ceso.esxi.source` lists.
        """
        ...

    def datastore(self, name: str | None) -> str:
        """``name`` if the host has that datastore (else NotFoundError listing them); the first for None."""
        ...

    def network(self, name: str) -> str:
        """``name`` if the host has that port group (else NotFoundError listing them)."""
        ...

    def networks(self, *, want: str | None = None) -> list[str]:
        """Every port group name; with ``want``, read fresh first if a kept list lacks it."""
        ...

    def macs_in_use(self) -> set[str]:
        """Every NIC MAC address of every VM on the host, lower case."""
        ...

    # -- files and disks -------------------------------------------------------------------
    def make_directory(self, path: str) -> None:
        """Make datastore folder ``[ds] path`` (its parent must exist); ConflictError if it does."""
        ...

    def delete_path(self, path: str) -> None:
        """Delete a datastore file or directory (recursively); a missing one is fine."""
        ...

    def path_exists(self, path: str) -> bool:
        """True if the datastore file or folder ``[ds] path`` exists."""
        ...

    def copy_disk(self, source: str, dest: str, *, on_progress: Callable[[int], None] | None = None) -> None:
        """Copy a virtual disk on the host, thin; the bytes never pass through ceso. ``on_progress``
        is called with the copy's percent where the route can read it (the API's task progress)."""
        ...

    def copy_file(self, source: str, dest: str) -> None:
        """Copy a small datastore file (an NVRAM) over ``dest``; NotFoundError if ``source`` is missing."""
        ...

    # -- VM lifecycle ----------------------------------------------------------------------
    def create_vm(self, spec: Any) -> VmT:
        """Create the VM ``spec`` describes (its disks already in place); returns its handle.

        On failure no VM is left registered; the directory is the caller's to remove.
        """
        ...

    def reconfigure(self, vm: VmT, spec: Any, *, what: str) -> None:
        """Apply ConfigSpec ``spec`` as one change (``what`` names it in errors)."""
        ...

    def power_state(self, vm: VmT) -> str:
        """``poweredOn``, ``poweredOff`` or ``suspended``."""
        ...

    def power_on(self, vm: VmT) -> str:
        """Power on; returns the power state the host reports afterwards (``poweredOn``).

        Raises when the VM did not power on, whatever the host's command said.
        """
        ...

    def power_off(self, vm: VmT) -> None: ...
    def reset(self, vm: VmT) -> None: ...

    def ask_guest_shutdown(self, vm: VmT) -> None:
        """Ask the guest to shut down; no wait (:func:`ceso.backends.guest.shut_down_guest` waits)."""
        ...

    def reboot_guest(self, vm: VmT) -> None:
        """Ask the guest to reboot (no wait); OperationError ``not_supported`` where the host cannot."""
        ...

    def guest_ips(self, vm: VmT) -> list[str]:
        """The addresses VMware Tools report now (none without Tools); one read, no wait."""
        ...

    def destroy(self, vm: VmT) -> None:
        """Unregister the VM and delete all its files."""
        ...

    # -- snapshots -------------------------------------------------------------------------
    def snapshot_tree(self, vm: VmT) -> list[Any]:
        """Root snapshot nodes with vSphere's attribute names (``name``, ``snapshot``, ``childSnapshotList``)."""
        ...

    def create_snapshot(
        self, vm: VmT, name: str, *, description: str = "", memory: bool = False, quiesce: bool = False
    ) -> SnapshotT: ...

    def remove_snapshot(self, snapshot: SnapshotT, *, children: bool = False) -> None: ...

    def revert_snapshot(self, snapshot: SnapshotT) -> None:
        """Revert to ``snapshot``; the VM ends in the snapshot's power state."""
        ...


#: What step code that serves every route holds.
AnyBackend = VmBackend[Any, Any]
