"""The SSH route: :class:`SshVmBackend`, the VM operations over vim-cmd, vmkfstools and SFTP.

:class:`SshVmBackend` implements :class:`ceso.backends.protocol.VmBackend` with the
ESXi shell: inventory from ``vim-cmd vmsvc/getallvms``, a VM's hardware from
its .vmx (read over SFTP) and its disks' descriptors, disks copied with
``vmkfstools -i … -d thin``, a new VM written as a complete .vmx (SFTP) and
registered with ``vim-cmd solo/registervm``. VM handles are :class:`SshVm`
(id, name, .vmx path); devices and specs are the same vSphere data objects
the API route uses (see :mod:`ceso.ssh.vmxspec`).

Every command and file transfer is reported to ``record(method, args)``
before it runs (``ssh`` with the exact command line; ``sftp.*`` with path,
size and SHA-256 — never file contents, which hold guestinfo). A fault that
vim-cmd prints is raised as the same CesoError the API route would raise
(:func:`ceso.backends.faults.translate`), whatever the exit status. Nothing
here retries a write, and nothing here imports :mod:`ceso.esxi` (the API route).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ceso.backends.base import RouteBackend
from ceso.backends.paths import one_named
from ceso.backends.protocol import SOURCE_PROPERTIES
from ceso.backends.ssh_lifecycle import SshLifecycle
from ceso.errors import CesoError, NotFoundError, OperationError, TimeoutExpiredError
from ceso.ssh import commands as cmd
from ceso.ssh import files
from ceso.ssh.client import CommandResult, SshClient
from ceso.ssh.handles import SshVm
from ceso.ssh.parsers import (
    parse_filesystems,
    parse_getallvms,
    parse_guest,
    parse_portgroups,
    parse_registered_id,
)
from ceso.ssh.vmx import Vmx, parse_vmx, render_vmx
from ceso.ssh.vmxspec import parse_descriptor, properties_from_vmx, vmx_from_spec

__all__ = ["COPY_FLOOR_BYTES_PER_S", "SshVmBackend"]

_VMX_PROPS = ("config.", "name")
#: The slowest a disk copy on the host may go before it counts as hung (a local disk under load).
COPY_FLOOR_BYTES_PER_S = 50 * 2**20


class SshVmBackend(SshLifecycle, RouteBackend[SshClient]):
    """VM-level operations on one host through its ESXi shell."""

    route = "ssh"

    # -- plumbing ----------------------------------------------------------------------------
    def run(
        self, command: cmd.ShellCommand, *, timeout: float | None = None, action: str = ""
    ) -> CommandResult:
        """Run and record one command; a printed fault or a non-zero exit raises a CesoError."""
        call: dict[str, Any] = {"command": command.line}
        self.record("ssh", call)
        try:
            result = self.client.run(command, timeout=timeout, check=False)
        except CesoError as exc:
            call["error"] = exc.code
            if isinstance(exc, TimeoutExpiredError):
                self.settle_after_timeout(command, exc, call)  # the host task outlives vim-cmd
            raise
        call.update(exit_status=result.exit_status, seconds=result.seconds)
        self.raise_for(result, action or command.line)
        return result

    def _read_vmx(self, vm: SshVm) -> Vmx:
        self.record("sftp.read", {"path": vm.vmfs_path})
        return parse_vmx(files.read_file(self.client, vm.vmfs_path).decode("utf-8"))

    # -- inventory ---------------------------------------------------------------------------
    def vms(self) -> list[SshVm]:
        rows = parse_getallvms(self.run(cmd.get_allvms()).stdout)
        return [SshVm(r.vmid, r.name, r.vmx_datastore_path) for r in rows]

    def find(self, name: str) -> SshVm:
        """The VM named ``name``: NotFoundError if none, ConflictError if several (as the API route)."""
        return one_named([vm for vm in self.vms() if vm.name == name], name, self.host)

    def exists(self, name: str) -> bool:
        return any(vm.name == name for vm in self.vms())

    def props(self, vm: SshVm, props: list[str]) -> dict[str, Any]:
        """The requested vSphere properties this route can know; unknown ones are absent (as unset)."""
        out: dict[str, Any] = {"obj": vm}
        if any(p.startswith(_VMX_PROPS) for p in props):
            vmx = self._read_vmx(vm)
            known = properties_from_vmx(vmx, vm_dir=vm.directory, disk_facts=self._disk_facts)
            out.update({p: known[p] for p in props if p in known})
        if "summary.config.vmPathName" in props:
            out["summary.config.vmPathName"] = vm.vmx_path
        if "runtime.powerState" in props:
            out["runtime.powerState"] = self.power_state(vm)
        if "snapshot" in props and (info := self.snapshot_info(vm)) is not None:
            out["snapshot"] = info
        if "guest.toolsRunningStatus" in props:
            status = parse_guest(self.run(cmd.get_guest(vm.vmid)).stdout).tools_running_status
            if status is not None:
                out["guest.toolsRunningStatus"] = status
        return out

    def source_props(self, vm: SshVm) -> dict[str, Any]:
        """:data:`ceso.backends.protocol.SOURCE_PROPERTIES` of ``vm``, its whole device list (the .vmx has it)."""
        return self.props(vm, SOURCE_PROPERTIES)

    def _disk_facts(self, path: str) -> Any:
        self.record("sftp.read", {"path": path})
        return parse_descriptor(files.read_file(self.client, path).decode("utf-8"))

    def datastore(self, name: str | None) -> str:
        """The named datastore, or the first; NotFoundError lists the choices."""
        fs = parse_filesystems(self.run(cmd.filesystem_list()).stdout)
        stores = sorted(f.name for f in fs if f.is_datastore)
        if name is None:
            if not stores:
                raise NotFoundError(f"host {self.client.target.host} has no datastore")
            return stores[0]
        if name not in stores:
            raise NotFoundError(
                f"no datastore {name!r} on host {self.client.target.host} (have: {', '.join(stores)})"
            )
        return name

    def free_space(self, name: str) -> int:
        """Free bytes on datastore ``name`` as ``esxcli storage filesystem list`` shows them now."""
        for fs in parse_filesystems(self.run(cmd.filesystem_list()).stdout):
            if fs.is_datastore and fs.name == name:
                return int(fs.free_bytes or 0)
        raise NotFoundError(f"no datastore {name!r} on host {self.client.target.host}")

    def delete_disk(self, path: str) -> None:
        """``vmkfstools -U DISK``: delete the virtual disk ``[ds] dir/disk.vmdk`` (descriptor and extents)."""
        target = cmd.from_datastore_path(path)
        self.run(cmd.delete_disk(target), timeout=self.task_timeout, action=f"delete disk {path}")

    def networks(self, *, want: str | None = None) -> list[str]:
        """Every port group (``esxcli network vswitch standard portgroup list``); nothing is kept."""
        return sorted(p.name for p in parse_portgroups(self.run(cmd.portgroup_list()).stdout))

    def network(self, name: str) -> str:
        groups = self.networks()
        if name not in groups:
            raise NotFoundError(
                f"no network {name!r} on host {self.client.target.host} (have: {', '.join(groups)})"
            )
        return name

    def macs_in_use(self) -> set[str]:
        """Every MAC written in any registered VM's .vmx (static or generated)."""
        macs: set[str] = set()
        for vm in self.vms():
            try:
                vmx = self._read_vmx(vm)
            except NotFoundError:
                continue
            for key, value in vmx.items():
                if key.lower().startswith("ethernet") and key.lower().endswith(
                    ("address", "generatedaddress")
                ):
                    macs.add(value.lower())
        return macs

    # -- files and disks ---------------------------------------------------------------------
    def make_directory(self, path: str) -> None:
        target = cmd.from_datastore_path(path)
        self.record("sftp.mkdir", {"path": target})
        files.make_directory(self.client, target)

    def path_exists(self, path: str) -> bool:
        """True if the datastore file or folder ``[ds] path`` exists (an SFTP stat)."""
        target = cmd.from_datastore_path(path)
        self.record("sftp.stat", {"path": target})
        return files.exists(self.client, target)

    def delete_path(self, path: str) -> None:
        """Delete a VM directory and its contents; a missing path is fine."""
        target = cmd.from_datastore_path(path)
        self.record("sftp.remove_tree", {"path": target})
        files.remove_tree(self.client, target)

    def copy_disk(self, source: str, dest: str, *, on_progress: Callable[[int], None] | None = None) -> None:
        """``vmkfstools -i SRC DST -d thin``: the bytes never leave the host. ``on_progress`` is
        not called: vmkfstools prints its percent only to a terminal.

        The time allowed grows with the source's extents: ``task_timeout`` or one second
        per :data:`COPY_FLOOR_BYTES_PER_S`, whichever is longer.
        """
        src, dst = cmd.from_datastore_path(source), cmd.from_datastore_path(dest)
        self.record("sftp.stat", {"path": src, "extents": True})
        timeout = max(self.task_timeout, files.extent_bytes(self.client, src) / COPY_FLOOR_BYTES_PER_S)
        result = self.run(cmd.thin_clone(src, dst), timeout=timeout, action=f"copy disk {source}")
        if "Failed" in result.stdout:
            raise OperationError(f"vmkfstools could not copy {src}: {result.stdout.strip()[-500:]}")

    def copy_file(self, source: str, dest: str) -> None:
        """Copy a small datastore file (an NVRAM) over SFTP, atomically replacing ``dest`` if it exists."""
        src, dst = cmd.from_datastore_path(source), cmd.from_datastore_path(dest)
        self.record("sftp.read", {"path": src})
        data = files.read_file(self.client, src)
        self.record("sftp.write", {"path": dst, "bytes": len(data), "replace": True})
        files.write_file(self.client, dst, data, replace=True)

    def write_thin_disk(
        self, dest: str, pieces: Iterable[tuple[int, bytes]], capacity: int, *, adapter: str
    ) -> int:
        """Write the thin VMFS disk ``dest`` (``[ds] dir/x.vmdk``) of ``capacity`` bytes: the data
        ``pieces`` (offset, bytes) into ``x-flat.vmdk`` (holes stay holes), then its descriptor.
        Returns the data bytes written (the disk's allocated size)."""
        from ceso.images.vmdk import flat_descriptor

        descriptor = cmd.from_datastore_path(dest)
        flat = descriptor.removesuffix(".vmdk") + "-flat.vmdk"
        self.record("sftp.write_sparse", {"path": flat, "capacity": capacity})
        written = files.write_sparse(self.client, flat, pieces, capacity)
        text = flat_descriptor(posixpath.basename(flat), capacity, adapter=adapter).encode()
        self.record("sftp.write", {"path": descriptor, "bytes": len(text)})
        files.write_file(self.client, descriptor, text)
        return written

    # -- VM creation ---------------------------------------------------------------------------
    def create_vm(self, spec: Any) -> SshVm:
        """Write ``spec`` as a complete .vmx (SFTP) and register it; returns the new VM.

        A registration that succeeded but whose follow-up fails is undone
        (``vmsvc/destroy``) before the error is raised, so the caller only
        ever has the directory to clean up.
        """
        vmx_path = spec.files.vmPathName
        target = cmd.from_datastore_path(vmx_path)
        vmx = vmx_from_spec(spec, vm_dir=posixpath.dirname(target))
        data = render_vmx(vmx)
        call: dict[str, Any] = {"path": target, "bytes": len(data), "keys": sorted(vmx)}
        self.record("sftp.write", call)
        call["sha256"] = files.write_file(self.client, target, data)
        vmid = parse_registered_id(
            self.run(cmd.register_vm(target, spec.name), action=f"register {spec.name}").stdout
        )
        vm = SshVm(vmid, spec.name, vmx_path)
        try:
            self.answer_copied_question(vm)
        except BaseException:
            self.run(cmd.destroy(vmid))
            raise
        return vm

    def reconfigure(self, vm: SshVm, spec: Any, *, what: str) -> None:
        """Only growing disks is possible over SSH (``vmkfstools -X``); anything else is refused."""
        changes = list(spec.deviceChange or [])
        other = [f for f in ("numCPUs", "memoryMB", "extraConfig", "guestId") if getattr(spec, f, None)]
        grows = [
            c for c in changes if c.operation == "edit" and type(c.device).__name__.endswith("VirtualDisk")
        ]
        if other or len(grows) != len(changes):
            raise OperationError(
                f"{what}: the SSH route can only grow disks, not change {', '.join(other) or 'devices'}",
                code="not_supported_over_ssh",
            )
        for change in grows:
            path = cmd.from_datastore_path(change.device.backing.fileName)
            self.run(
                cmd.extend_disk(path, change.device.capacityInKB * 1024),
                timeout=self.task_timeout,
                action=what,
            )


if TYPE_CHECKING:
    from ceso.backends.protocol import VmBackend
    from ceso.ssh.handles import SshSnapshot

    def _implements_the_protocol(backend: SshVmBackend) -> VmBackend[SshVm, SshSnapshot]:
        return backend  # mypy holds SshVmBackend to VmBackend here, handle types included
