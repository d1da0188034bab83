"""Which way a job reaches its host — the vSphere API or SSH — and the one interface both offer.

One narrow interface per external system: :class:`VmBackend`
is the set of VM operations provisioning (and the VM lifecycle jobs) use;
:class:`ceso.backends.api.VmOps` implements it with pyVmomi and
:class:`ceso.backends.ssh.SshVmBackend` with vim-cmd, vmkfstools and SFTP.
Handles (``vm``, ``snapshot``) are opaque and belong to the backend that
returned them; devices and specs are vSphere data objects on both routes.

Route choice (:func:`choose_route`), per host, from its SQL record:

* ``route = api`` or ``ssh`` forces that route;
* ``auto`` takes SSH when the last probe found API writes refused (a free
  license, or a ``RestrictedVersion`` fault on the probe's write), else the API.

:func:`vm_backend` makes that choice for a job, records it on every step of
the job (``route`` in the step) and returns the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import Session

from ceso.errors import NotPermittedError

if TYPE_CHECKING:
    from ceso.db.models import Host
    from ceso.jobs.context import JobContext
    from ceso.runtime import Runtime

__all__ = ["ROUTES", "VmBackend", "choose_route", "route_of", "vm_backend"]

ROUTES = ("auto", "api", "ssh")


class VmBackend(Protocol):
    """VM operations on one host. Every method raises CesoErrors only and retries no write.

    Each call to the host is reported to the backend's recorder before it is
    made (vSphere method or shell command, no secret, no file contents).
    """

    def find(self, name: str) -> Any:
        """The VM named ``name``; NotFoundError, or ConflictError if several share it."""

    def exists(self, name: str) -> bool: ...

    def props(self, vm: Any, props: list[str]) -> dict[str, Any]:
        """vSphere property paths of ``vm``; ones the route cannot know or that are unset are absent."""

    def source_props(self, vm: Any) -> dict[str, Any]:
        """``props(vm, SOURCE_PROPERTIES)`` (:mod:`ceso.esxi.source`) as provisioning reads them.

        Its device list holds at least the controllers, disks and NICs, with
        at least the fields that module lists.
        """

    def datastore(self, name: str | None) -> str:
        """``name`` if the host has that datastore (else NotFoundError); the first one for None."""

    def network(self, name: str) -> str: ...
    def macs_in_use(self) -> set[str]: ...
    def make_directory(self, path: str) -> None: ...

    def delete_path(self, path: str) -> None:
        """Delete a datastore file or directory (recursively); a missing one is fine."""

    def copy_disk(self, source: str, dest: str) -> None:
        """Copy a virtual disk on the host, thin; the bytes never pass through ceso."""

    def copy_file(self, source: str, dest: str) -> None:
        """Copy a small datastore file (an NVRAM) over ``dest``; NotFoundError if ``source`` is missing."""

    def create_vm(self, spec: Any) -> Any:
        """Create the VM ``spec`` describes (its disks already in place); returns its handle."""

    def reconfigure(self, vm: Any, spec: Any, *, what: str) -> None: ...
    def power_state(self, vm: Any) -> str: ...
    def power_on(self, vm: Any) -> str:
        """Power on; returns the power state the host reports afterwards (``poweredOn``).

        Raises when the VM did not power on, whatever the host's command said.
        """

    def power_off(self, vm: Any) -> None: ...
    def reset(self, vm: Any) -> None: ...
    def shutdown_guest(self, vm: Any, *, timeout: float) -> None: ...
    def reboot_guest(self, vm: Any) -> None: ...
    def wait_power_state(self, vm: Any, state: str, *, timeout: float) -> None: ...

    def destroy(self, vm: Any) -> None:
        """Unregister the VM and delete all its files."""

    def wait_for_ip(self, vm: Any, *, expected: list[str], timeout: float) -> list[str]: ...
    def snapshot_tree(self, vm: Any) -> list[Any]: ...
    def create_snapshot(
        self, vm: Any, name: str, *, description: str = "", memory: bool = False, quiesce: bool = False
    ) -> Any: ...
    def remove_snapshot(self, snapshot: Any, *, children: bool = False) -> None: ...
    def revert_snapshot(self, snapshot: Any) -> None: ...

    def path_exists(self, path: str) -> bool:
        """True if the datastore file or folder ``[ds] path`` exists."""


def choose_route(host: Host) -> str:
    """``api`` or ``ssh`` for ``host`` (see the module docstring)."""
    if host.route in ("api", "ssh"):
        return host.route
    return "ssh" if (host.capabilities or {}).get("api_writes") is False else "api"


def route_of(runtime: Runtime, host_name: str) -> str:
    """The route jobs on host ``host_name`` will take now (``api`` or ``ssh``); NotFoundError if unknown."""
    from ceso.hosts.registry import get_host

    with Session(runtime.engine) as session:
        return choose_route(get_host(session, host_name))


def vm_backend(ctx: JobContext) -> VmBackend:
    """The backend of the job's host on its route; the route is recorded on every later step.

    Raises NotPermittedError (``api_read_only``) when the API cannot write
    and no SSH login is configured for the host.
    """
    from ceso.hosts.registry import get_host
    from ceso.ssh.target import ssh_configured

    with Session(ctx.runtime.engine) as session:
        host = get_host(session, ctx.job.host)
    route = choose_route(host)
    timeout = ctx.runtime.settings.esxi_task_timeout_s
    if route == "ssh" and not ssh_configured(host):
        raise NotPermittedError(
            f"host {host.name} needs the SSH route (its API "
            f"{'is set aside by route: ssh' if host.route == 'ssh' else 'cannot write'}) but has no SSH login: "
            "re-add it with --ssh-user and --ssh-key",
            code="api_read_only",
        )
    ctx.route = route
    if route == "api":
        from ceso.backends.api import VmOps

        return VmOps(ctx.client(), ctx.record_call, task_timeout=timeout)
    from ceso.backends.ssh import SshVmBackend

    return SshVmBackend(ctx.runtime.ssh.client(host), ctx.record_call, task_timeout=timeout)
