"""An in-memory host behind :class:`ceso.backends.protocol.VmBackend`, for unit tests of step logic.

:class:`FakeBackend` keeps datastores (sets of file and folder paths), port
groups and VMs (hardware as vSphere data objects, power state, snapshots,
guest addresses) and answers as a standalone ESXi host does through either
route: the same CesoErrors for the same mistakes (NotFoundError for a missing
VM, file or folder, ConflictError for an existing folder or file or a VM in
the wrong power state, OperationError without VMware Tools). Every write is
reported to ``record`` as the real routes report theirs, and kept in
:attr:`FakeBackend.calls`.

Plug it into a runtime (``runtime.backend_factory``) and every job that asks
``ctx.backend()`` gets it; jobs that need the API (backups) still refuse to
take it. :meth:`FakeBackend.fail` makes the next call of a method raise, to
test what a step leaves behind; :meth:`FakeBackend.lose_answer` makes it act, then raise. The simulator tests stay the reference: this
fake is for step logic that would take seconds per case there.
"""

from __future__ import annotations

import itertools
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ceso.backends.paths import datastore_path, one_named
from ceso.backends.protocol import Recorder
from ceso.backends.vmomi import vim
from ceso.errors import CesoError, ConflictError, NotFoundError, OperationError

if TYPE_CHECKING:
    from ceso.backends.protocol import VmBackend

__all__ = ["FakeBackend", "FakeSnapshot", "FakeSnapshotNode", "FakeVm"]


@dataclass(eq=False)
class FakeVm:
    """A registered VM of the fake host; its ``config`` holds vSphere property paths."""

    name: str
    vmx_path: str
    config: dict[str, Any]
    power_state: str = "poweredOff"
    tools: bool = True
    guest_ips: list[str] = field(default_factory=list)
    snapshots: list[FakeSnapshotNode] = field(default_factory=list)


@dataclass(frozen=True)
class FakeSnapshot:
    vm: FakeVm
    id: int
    name: str


@dataclass
class FakeSnapshotNode:
    """A snapshot tree node with vSphere's attribute names."""

    name: str
    id: int
    description: str
    snapshot: FakeSnapshot
    quiesced: bool = False
    state: str = "poweredOff"  # the VM's power state as the snapshot keeps it (on only with memory)
    childSnapshotList: list[FakeSnapshotNode] = field(default_factory=list)  # noqa: N815


def _walk(nodes: list[FakeSnapshotNode]) -> Iterator[FakeSnapshotNode]:
    for node in nodes:
        yield node
        yield from _walk(node.childSnapshotList)


class FakeBackend:
    """One in-memory host; see the module docstring."""

    route = "fake"

    def __init__(
        self,
        *,
        host: str = "fake-host",
        datastores: tuple[str, ...] = ("datastore1",),
        networks: tuple[str, ...] = ("VM Network",),
        record: Recorder | None = None,
    ) -> None:
        self._host = host
        self.files: dict[str, set[str]] = {ds: set() for ds in datastores}  # paths; folders end in "/"
        self.port_groups = list(networks)
        self.vms: list[FakeVm] = []
        self.record: Recorder = record or (lambda _m, _a: None)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._failures: dict[str, CesoError] = {}
        self._ids = itertools.count(1)

    @property
    def host(self) -> str:
        return self._host

    # -- test set-up ----------------------------------------------------------------------
    def add_vm(
        self,
        name: str,
        *,
        datastore: str = "datastore1",
        disks_kb: tuple[int, ...] = (1024,),
        networks: tuple[str, ...] = ("VM Network",),
        power_state: str = "poweredOff",
        tools: bool = True,
    ) -> FakeVm:
        """Register a VM with a SCSI controller, ``disks_kb`` disks and a NIC per network, files included."""
        v = vim().vm.device
        devices: list[Any] = [v.VirtualLsiLogicController(key=1000, busNumber=0, sharedBus="noSharing")]
        for i, kb in enumerate(disks_kb):
            path = datastore_path(datastore, f"{name}/{name}{'' if i == 0 else f'_{i}'}.vmdk")
            devices.append(
                v.VirtualDisk(
                    key=2000 + i,
                    controllerKey=1000,
                    unitNumber=i,
                    capacityInKB=kb,
                    capacityInBytes=kb * 1024,
                    backing=v.VirtualDisk.FlatVer2BackingInfo(fileName=path, diskMode="persistent"),
                )
            )
        for i, net in enumerate(networks):
            devices.append(
                v.VirtualVmxnet3(
                    key=4000 + i,
                    macAddress=f"00:0c:29:00:00:{i:02x}",
                    backing=v.VirtualEthernetCard.NetworkBackingInfo(deviceName=net),
                )
            )
        vmx = datastore_path(datastore, f"{name}/{name}.vmx")
        config = {
            "config.hardware.device": devices,
            "config.hardware.numCPU": 1,
            "config.hardware.memoryMB": 512,
            "config.guestId": "otherGuest64",
            "config.version": "vmx-19",
            "config.extraConfig": [],
        }
        vm = FakeVm(name, vmx, config, power_state=power_state, tools=tools)
        self._put(datastore_path(datastore, f"{name}/"))
        for path in [vmx, *(d.backing.fileName for d in devices if isinstance(d, v.VirtualDisk))]:
            self._put(path)
        self.vms.append(vm)
        return vm

    def fail(self, method: str, error: CesoError) -> None:
        """Make the next call of ``method`` raise ``error`` (after recording it), changing nothing."""
        self._failures[method] = error

    def lose_answer(self, method: str, error: CesoError) -> None:
        """Make the next call of ``method`` do what it asks, then raise ``error``: the host acted and
        its answer was lost (a connection cut after the request)."""
        original = getattr(self, method)

        def once(*args: Any, **kwargs: Any) -> Any:
            del self.__dict__[method]  # the class's method answers again
            original(*args, **kwargs)
            raise error

        setattr(self, method, once)

    def _call(self, method: str, **args: Any) -> None:
        self.calls.append((method, args))
        self.record(method, args)
        if (error := self._failures.pop(method, None)) is not None:
            raise error

    # -- files ----------------------------------------------------------------------------------
    def _split(self, path: str) -> tuple[str, str]:
        ds, _, rest = path[1:].partition("]")
        if ds not in self.files:
            raise NotFoundError(f"no datastore {ds!r} on host {self.host}")
        return ds, rest.strip()

    def _exists(self, path: str) -> bool:
        ds, rel = self._split(path)
        rel = rel.rstrip("/")
        return rel == "" or rel in self.files[ds] or f"{rel}/" in self.files[ds]

    def _put(self, path: str) -> None:
        ds, rel = self._split(path)
        self.files[ds].add(rel)

    def _parent_must_exist(self, path: str) -> None:
        ds, rel = self._split(path)
        parent = posixpath.dirname(rel.rstrip("/"))
        if parent and not self._exists(datastore_path(ds, parent)):
            raise NotFoundError(f"FileNotFound: {datastore_path(ds, parent)} on host {self.host}")

    def make_directory(self, path: str) -> None:
        self._call("make_directory", path=path)
        if self._exists(path):
            raise ConflictError(f"FileAlreadyExists: {path} on host {self.host}")
        self._parent_must_exist(path)
        self._put(path.rstrip("/") + "/")

    def delete_path(self, path: str) -> None:
        self._call("delete_path", path=path)
        ds, rel = self._split(path)
        rel = rel.rstrip("/")
        self.files[ds] = {p for p in self.files[ds] if p.rstrip("/") != rel and not p.startswith(f"{rel}/")}

    def path_exists(self, path: str) -> bool:
        return self._exists(path)

    def copy_disk(self, source: str, dest: str, *, on_progress: Callable[[int], None] | None = None) -> None:
        self._call("copy_disk", source=source, dest=dest)
        if not self._exists(source):
            raise NotFoundError(f"FileNotFound: {source} on host {self.host}")
        if self._exists(dest):
            raise ConflictError(f"FileAlreadyExists: {dest} on host {self.host}")
        self._parent_must_exist(dest)
        self._put(dest)

    def copy_file(self, source: str, dest: str) -> None:
        """Copy a small file over ``dest`` (replacing it); NotFoundError if ``source`` is missing."""
        self._call("copy_file", source=source, dest=dest)
        if not self._exists(source):
            raise NotFoundError(f"FileNotFound: {source} on host {self.host}")
        self._parent_must_exist(dest)
        self._put(dest)

    # -- inventory ------------------------------------------------------------------------------
    def find(self, name: str) -> FakeVm:
        return one_named([vm for vm in self.vms if vm.name == name], name, self.host)

    def exists(self, name: str) -> bool:
        return any(vm.name == name for vm in self.vms)

    def _registered(self, vm: FakeVm) -> FakeVm:
        if vm not in self.vms:
            raise NotFoundError(f"ManagedObjectNotFound: VM {vm.name} on host {self.host}")
        return vm

    def props(self, vm: FakeVm, props: list[str]) -> dict[str, Any]:
        self._registered(vm)
        known: dict[str, Any] = {
            **vm.config,
            "name": vm.name,
            "summary.config.vmPathName": vm.vmx_path,
            "runtime.powerState": vm.power_state,
            "config.template": False,
            "guest.ipAddress": vm.guest_ips[0] if vm.guest_ips else None,
        }
        if vm.snapshots:
            known["snapshot"] = type("SnapshotInfo", (), {"rootSnapshotList": vm.snapshots})()
        return {"obj": vm, **{p: known[p] for p in props if known.get(p) is not None}}

    def source_props(self, vm: FakeVm) -> dict[str, Any]:
        from ceso.backends.protocol import SOURCE_PROPERTIES

        return self.props(vm, SOURCE_PROPERTIES)

    def datastore(self, name: str | None) -> str:
        stores = sorted(self.files)
        if name is None:
            return stores[0]
        if name not in stores:
            raise NotFoundError(f"no datastore {name!r} on host {self.host} (have: {', '.join(stores)})")
        return name

    def networks(self, *, want: str | None = None) -> list[str]:
        return sorted(self.port_groups)

    def network(self, name: str) -> str:
        if name not in self.port_groups:
            raise NotFoundError(
                f"no network {name!r} on host {self.host} (have: {', '.join(self.networks())})"
            )
        return name

    def macs_in_use(self) -> set[str]:
        return {
            str(d.macAddress).lower()
            for vm in self.vms
            for d in vm.config.get("config.hardware.device") or []
            if getattr(d, "macAddress", None)
        }

    # -- VM lifecycle ---------------------------------------------------------------------------
    def create_vm(self, spec: Any) -> FakeVm:
        """Register the VM of ConfigSpec ``spec``; its folder and disks must exist, its .vmx must not."""
        self._call("create_vm", name=spec.name, vmx=spec.files.vmPathName)
        vmx = spec.files.vmPathName
        self._parent_must_exist(vmx)
        if self._exists(vmx):
            raise ConflictError(f"FileAlreadyExists: {vmx} on host {self.host}")
        devices = [c.device for c in spec.deviceChange or [] if c.operation == "add"]
        for dev in devices:
            name = getattr(getattr(dev, "backing", None), "fileName", None)
            if isinstance(dev, vim().vm.device.VirtualDisk) and not self._exists(name or ""):
                raise NotFoundError(f"FileNotFound: {name} on host {self.host}")
        config = {
            "config.hardware.device": devices,
            "config.hardware.numCPU": spec.numCPUs,
            "config.hardware.memoryMB": spec.memoryMB,
            "config.hardware.numCoresPerSocket": spec.numCoresPerSocket or 1,
            "config.memoryAllocation.reservation": getattr(spec.memoryAllocation, "reservation", None) or 0,
            "config.cpuAllocation.reservation": getattr(spec.cpuAllocation, "reservation", None) or 0,
            "config.guestId": spec.guestId,
            "config.version": spec.version,
            "config.uuid": spec.uuid,
            "config.extraConfig": list(spec.extraConfig or []),
        }
        self._put(vmx)
        vm = FakeVm(spec.name, vmx, config)
        self.vms.append(vm)
        return vm

    def reconfigure(self, vm: FakeVm, spec: Any, *, what: str) -> None:
        self._call("reconfigure", vm=vm.name, what=what)
        self._registered(vm)
        for key, prop in (("numCPUs", "config.hardware.numCPU"), ("memoryMB", "config.hardware.memoryMB")):
            if getattr(spec, key, None):
                vm.config[prop] = getattr(spec, key)
        devices = list(vm.config["config.hardware.device"])
        for change in spec.deviceChange or []:
            keep = [d for d in devices if d.key != change.device.key]
            devices = keep + ([change.device] if change.operation in ("add", "edit") else [])
        vm.config["config.hardware.device"] = devices

    def power_state(self, vm: FakeVm) -> str:
        return self._registered(vm).power_state

    def _power(self, vm: FakeVm, method: str, *, needs: str, to: str) -> None:
        self._call(method, vm=vm.name)
        if self._registered(vm).power_state != needs:
            raise ConflictError(
                f"InvalidPowerState: {method} of VM {vm.name} ({vm.power_state}) on host {self.host}"
            )
        vm.power_state = to

    def power_on(self, vm: FakeVm) -> str:
        self._power(vm, "power_on", needs="poweredOff", to="poweredOn")
        return vm.power_state

    def power_off(self, vm: FakeVm) -> None:
        self._power(vm, "power_off", needs="poweredOn", to="poweredOff")

    def reset(self, vm: FakeVm) -> None:
        self._power(vm, "reset", needs="poweredOn", to="poweredOn")

    def _tools(self, vm: FakeVm, method: str) -> None:
        if not vm.tools:
            raise OperationError(
                f"guest {method} of VM {vm.name} on host {self.host}: ToolsUnavailable", code="esxi_fault"
            )

    def ask_guest_shutdown(self, vm: FakeVm) -> None:
        """The guest obeys at once when it has Tools."""
        self._call("ask_guest_shutdown", vm=vm.name)
        if self._registered(vm).power_state != "poweredOn":
            raise ConflictError(f"InvalidPowerState: guest shutdown of VM {vm.name} on host {self.host}")
        self._tools(vm, "shutdown")
        vm.power_state = "poweredOff"

    def reboot_guest(self, vm: FakeVm) -> None:
        self._call("reboot_guest", vm=vm.name)
        if self._registered(vm).power_state != "poweredOn":
            raise ConflictError(f"InvalidPowerState: guest reboot of VM {vm.name} on host {self.host}")
        self._tools(vm, "reboot")

    def guest_ips(self, vm: FakeVm) -> list[str]:
        return list(self._registered(vm).guest_ips) if vm.power_state == "poweredOn" else []

    def destroy(self, vm: FakeVm) -> None:
        """Unregister and delete the VM's files; its folder goes too when nothing else is in it."""
        self._call("destroy", vm=vm.name)
        if self._registered(vm).power_state != "poweredOff":
            raise ConflictError(
                f"InvalidPowerState: destroy VM {vm.name} ({vm.power_state}) on host {self.host}"
            )
        owned = [vm.vmx_path] + [
            d.backing.fileName
            for d in vm.config.get("config.hardware.device") or []
            if isinstance(d, vim().vm.device.VirtualDisk)
        ]
        for path in owned:
            ds, rel = self._split(path)
            self.files[ds].discard(rel)
        ds, rel = self._split(vm.vmx_path)
        folder = posixpath.dirname(rel)
        if not any(p.startswith(f"{folder}/") and p != f"{folder}/" for p in self.files[ds]):
            self.files[ds].discard(f"{folder}/")
        self.vms.remove(vm)

    # -- snapshots ------------------------------------------------------------------------------
    def snapshot_tree(self, vm: FakeVm) -> list[FakeSnapshotNode]:
        return list(self._registered(vm).snapshots)

    def create_snapshot(
        self, vm: FakeVm, name: str, *, description: str = "", memory: bool = False, quiesce: bool = False
    ) -> FakeSnapshot:
        """A snapshot as a child of the VM's newest one (the fake's "current" snapshot)."""
        self._call("create_snapshot", vm=vm.name, name=name, memory=memory, quiesce=quiesce)
        self._registered(vm)
        snap = FakeSnapshot(vm, next(self._ids), name)
        state = vm.power_state if memory else "poweredOff"
        node = FakeSnapshotNode(name, snap.id, description, snap, quiesced=quiesce, state=state)
        nodes = list(_walk(vm.snapshots))
        (nodes[-1].childSnapshotList if nodes else vm.snapshots).append(node)
        return snap

    def _node(self, snapshot: FakeSnapshot) -> tuple[list[FakeSnapshotNode], FakeSnapshotNode]:
        vm = self._registered(snapshot.vm)
        for parent in [vm.snapshots, *(n.childSnapshotList for n in _walk(vm.snapshots))]:
            for node in parent:
                if node.id == snapshot.id:
                    return parent, node
        raise NotFoundError(f"ManagedObjectNotFound: snapshot {snapshot.name} on host {self.host}")

    def remove_snapshot(self, snapshot: FakeSnapshot, *, children: bool = False) -> None:
        """Children move up to the parent unless removed with it (as vSphere consolidates)."""
        self._call("remove_snapshot", vm=snapshot.vm.name, name=snapshot.name, children=children)
        siblings, node = self._node(snapshot)
        siblings.remove(node)
        if not children:
            siblings.extend(node.childSnapshotList)

    def revert_snapshot(self, snapshot: FakeSnapshot) -> None:
        """The fake's snapshots keep no memory: the VM ends powered off."""
        self._call("revert_snapshot", vm=snapshot.vm.name, name=snapshot.name)
        self._node(snapshot)
        snapshot.vm.power_state = "poweredOff"


if TYPE_CHECKING:

    def _implements_the_protocol(fake: FakeBackend) -> VmBackend[FakeVm, FakeSnapshot]:
        return fake  # mypy holds FakeBackend to VmBackend here, handle types included
