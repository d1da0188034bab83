"""The API route: :class:`ApiVmBackend`, the VM operations through the vSphere API of a standalone host.

It implements :class:`ceso.backends.protocol.VmBackend` with pyVmomi (through
:mod:`ceso.esxi`); VM and snapshot handles are pyVmomi managed objects.
Every method makes its vSphere calls through :class:`EsxiClient` (so faults
are translated) and reports each call, with its arguments minus secrets and
bulky values, to ``record(method, args)`` so the job's step shows exactly what
was asked of the host. Tasks are awaited; their faults are raised as
CesoErrors. Nothing here retries a write, except one the host refused because
a cached object of the host's layout is gone (then nothing was done; see
``_on_layout``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ceso.backends.base import RouteBackend
from ceso.backends.faults import fault_name
from ceso.backends.paths import split_datastore_path
from ceso.backends.vmomi import vim
from ceso.errors import CesoError, NotFoundError, OperationError
from ceso.esxi.client import EsxiClient
from ceso.esxi.inventory import find_vm
from ceso.esxi.layout import HostLayout, names_gone_object
from ceso.esxi.source import read_source
from ceso.esxi.vmscan import macs_in_use

__all__ = ["ApiVmBackend"]

T = TypeVar("T")

log = logging.getLogger(__name__)


class ApiVmBackend(RouteBackend[EsxiClient]):
    """VM-level vSphere calls on one host."""

    route = "api"

    # -- discovery -------------------------------------------------------------
    def layout(self, *, datastore: str | None = None, network: str | None = None) -> HostLayout:
        """Datacenter, VM folder, resource pool, host, datastores and networks.

        Kept per session (:mod:`ceso.esxi.layout`); read again first if it
        lacks the named ``datastore`` or ``network``.
        """
        return self.client.layout_cache.get(datastore=datastore, network=network)

    def _on_layout(self, fn: Callable[[HostLayout], T]) -> T:
        """``fn(layout)``; once more with a fresh layout if the host says a cached object is gone.

        Safe for writes: a request naming a missing object is refused before
        it does anything (``fn`` makes the request; a task's fault is not
        seen here).
        """
        layout = self.layout()
        try:
            return fn(layout)
        except NotFoundError as exc:
            if not names_gone_object(exc, layout):
                raise
        self.client.layout_cache.forget()
        return fn(self.layout())

    def datastore(self, name: str | None) -> str:
        """The named datastore, or the only/first one; NotFoundError lists the choices."""
        stores = self.layout(datastore=name).datastores
        if name is None:
            if not stores:
                raise NotFoundError(f"host {self.client.name} has no datastore")
            return sorted(stores)[0]
        if name not in stores:
            raise NotFoundError(
                f"no datastore {name!r} on host {self.client.name} (have: {', '.join(sorted(stores))})"
            )
        return name

    def datastore_props(self, name: str, props: list[str]) -> dict[str, Any]:
        """Properties of datastore ``name`` (NotFoundError if the host has none of that name)."""
        self.datastore(name)
        return self._on_layout(lambda layout: self.props(layout.datastores[name], props))

    def free_space(self, name: str) -> int:
        """Free bytes on datastore ``name``, refreshed first.

        ``summary.freeSpace`` is the host's last reckoning, which may lag what
        was written since (ESXi updates it lazily; the simulator only subtracts,
        at disk creation). ``Datastore.RefreshDatastore`` recomputes it; if the
        host refuses the refresh (a read-only API), the summary is used as it is.
        """
        self.datastore(name)
        self.record("Datastore.RefreshDatastore", {"datastore": name})
        try:
            self._on_layout(
                lambda layout: self.client.call(
                    f"refresh datastore {name}", layout.datastores[name].RefreshDatastore
                )
            )
        except NotFoundError:
            raise
        except CesoError as exc:
            log.info("datastore %s not refreshed (%s); using its last free space", name, exc.message)
        return int(self.datastore_props(name, ["summary.freeSpace"]).get("summary.freeSpace") or 0)

    def network(self, name: str) -> str:
        nets = self.layout(network=name).networks
        if name not in nets:
            raise NotFoundError(
                f"no network {name!r} on host {self.client.name} (have: {', '.join(sorted(nets))})"
            )
        return name

    def networks(self, *, want: str | None = None) -> list[str]:
        return sorted(self.layout(network=want).networks)

    def find(self, name: str) -> Any:
        return find_vm(self.client, name)

    def exists(self, name: str) -> bool:
        try:
            self.find(name)
        except NotFoundError:
            return False
        return True

    def props(self, vm: Any, props: list[str]) -> dict[str, Any]:
        return self.client.retrieve_object(vm, props)

    def source_props(self, vm: Any) -> dict[str, Any]:
        """What provisioning reads of its source ``vm``, parsed as XML (one request; see ceso.esxi.source)."""
        return read_source(self.client, vm)

    def macs_in_use(self) -> set[str]:
        """Every NIC MAC address of every VM on the host (one request; see ceso.esxi.vmscan)."""
        return macs_in_use(self.client)

    # -- files and disks -------------------------------------------------------------
    def _wait(self, task: Any, action: str, on_progress: Callable[[int], None] | None = None) -> Any:
        return self.client.wait_task(task, action=action, timeout=self.task_timeout, on_progress=on_progress)

    def make_directory(self, path: str) -> None:
        fm = self.client.content.fileManager
        self.record("FileManager.MakeDirectory", {"name": path, "createParentDirectories": False})
        self._on_layout(
            lambda layout: self.client.call(
                f"create directory {path}",
                lambda: fm.MakeDirectory(
                    name=path, datacenter=layout.datacenter, createParentDirectories=False
                ),
            )
        )

    def delete_path(self, path: str) -> None:
        """Delete a datastore file or directory (recursively); a missing path is fine."""
        fm = self.client.content.fileManager
        self.record("FileManager.DeleteDatastoreFile_Task", {"name": path})
        try:
            task = self._on_layout(
                lambda layout: self.client.call(
                    f"delete {path}",
                    lambda: fm.DeleteDatastoreFile_Task(name=path, datacenter=layout.datacenter),
                )
            )
            self._wait(task, f"delete {path}")
        except NotFoundError:
            pass

    def delete_disk(self, path: str) -> None:
        """``VirtualDiskManager.DeleteVirtualDisk_Task``: the disk ``[ds] dir/disk.vmdk`` and its extents."""
        vdm = self.client.content.virtualDiskManager
        self.record("VirtualDiskManager.DeleteVirtualDisk_Task", {"name": path})
        task = self._on_layout(
            lambda layout: self.client.call(
                f"delete disk {path}",
                lambda: vdm.DeleteVirtualDisk_Task(name=path, datacenter=layout.datacenter),
            )
        )
        self._wait(task, f"delete disk {path}")

    def copy_disk(self, source: str, dest: str, *, on_progress: Callable[[int], None] | None = None) -> None:
        """Copy a virtual disk on the host, thin (the bytes never leave the host); ``on_progress``
        gets the task's percent as the host reports it."""
        vdm = self.client.content.virtualDiskManager
        self.record(
            "VirtualDiskManager.CopyVirtualDisk_Task",
            {"sourceName": source, "destName": dest, "destSpec.diskType": "thin", "force": False},
        )
        spec = vim().VirtualDiskManager.VirtualDiskSpec(diskType="thin", adapterType="lsiLogic")
        task = self._on_layout(
            lambda layout: self.client.call(
                f"copy disk {source}",
                lambda: vdm.CopyVirtualDisk_Task(
                    sourceName=source,
                    sourceDatacenter=layout.datacenter,
                    destName=dest,
                    destDatacenter=layout.datacenter,
                    destSpec=spec,
                    force=False,
                ),
            )
        )
        self._wait(task, f"copy disk {source} to {dest}", on_progress)

    def copy_file(self, source: str, dest: str) -> None:
        """FileManager.CopyDatastoreFile_Task over ``dest`` (force); NotFoundError if ``source`` is missing."""
        fm = self.client.content.fileManager
        self.record(
            "FileManager.CopyDatastoreFile_Task",
            {"sourceName": source, "destinationName": dest, "force": True},
        )
        task = self._on_layout(
            lambda layout: self.client.call(
                f"copy {source}",
                lambda: fm.CopyDatastoreFile_Task(
                    sourceName=source,
                    sourceDatacenter=layout.datacenter,
                    destinationName=dest,
                    destinationDatacenter=layout.datacenter,
                    force=True,
                ),
            )
        )
        self._wait(task, f"copy {source} to {dest}")

    # -- VM lifecycle ------------------------------------------------------------------
    def create_vm(self, spec: Any) -> Any:
        """CreateVM_Task in the host's VM folder and resource pool; returns the VM."""
        self.record("Folder.CreateVM_Task", _describe_spec(spec))
        task = self._on_layout(
            lambda layout: self.client.call(
                f"create VM {spec.name}",
                lambda: layout.vm_folder.CreateVM_Task(config=spec, pool=layout.resource_pool),
            )
        )
        return self._wait(task, f"create VM {spec.name}")

    def reconfigure(self, vm: Any, spec: Any, *, what: str) -> None:
        self.record("VirtualMachine.ReconfigVM_Task", {"vm": vm._moId, **_describe_spec(spec)})
        task = self.client.call(f"reconfigure ({what})", lambda: vm.ReconfigVM_Task(spec=spec))
        self._wait(task, f"reconfigure ({what})")

    def power_state(self, vm: Any) -> str:
        return str(self.props(vm, ["runtime.powerState"]).get("runtime.powerState"))

    def power_on(self, vm: Any) -> str:
        """PowerOnVM_Task; its success is the host's word that the VM is ``poweredOn`` (returned)."""
        self.record("VirtualMachine.PowerOnVM_Task", {"vm": vm._moId})
        self._wait(self.client.call("power on", vm.PowerOnVM_Task), "power on")
        return "poweredOn"

    def power_off(self, vm: Any) -> None:
        self.record("VirtualMachine.PowerOffVM_Task", {"vm": vm._moId})
        self._wait(self.client.call("power off", vm.PowerOffVM_Task), "power off")

    def reset(self, vm: Any) -> None:
        self.record("VirtualMachine.ResetVM_Task", {"vm": vm._moId})
        self._wait(self.client.call("reset", vm.ResetVM_Task), "reset")

    def ask_guest_shutdown(self, vm: Any) -> None:
        """ShutdownGuest: ask, no wait (:func:`ceso.backends.guest.shut_down_guest` waits)."""
        self.record("VirtualMachine.ShutdownGuest", {"vm": vm._moId})
        self.client.call("guest shutdown", vm.ShutdownGuest)

    def reboot_guest(self, vm: Any) -> None:
        """Ask the guest to reboot (no wait); OperationError ``not_supported`` if the host lacks RebootGuest."""
        self.record("VirtualMachine.RebootGuest", {"vm": vm._moId})
        try:
            self.client.call("guest reboot", vm.RebootGuest)
        except OperationError as exc:
            # A host without the method (the simulator) answers MethodNotFound, which faults.py leaves generic.
            if exc.__cause__ is None or fault_name(exc.__cause__) != "MethodNotFound":
                raise
            raise OperationError(
                f"guest reboot on host {self.client.name}: not supported by this host (no RebootGuest)",
                code="not_supported",
            ) from exc

    def destroy(self, vm: Any) -> None:
        """Destroy_Task: unregister the VM and delete all its files."""
        self.record("VirtualMachine.Destroy_Task", {"vm": vm._moId})
        self._wait(self.client.call("destroy VM", vm.Destroy_Task), "destroy VM")

    def guest_ips(self, vm: Any) -> list[str]:
        """The addresses in ``guest.net`` and ``guest.ipAddress`` now (one property read)."""
        row = self.props(vm, ["guest.net", "guest.ipAddress"])
        ips = [ip for nic in row.get("guest.net") or [] for ip in (nic.ipAddress or [])]
        if row.get("guest.ipAddress") and row["guest.ipAddress"] not in ips:
            ips.append(row["guest.ipAddress"])
        return ips

    # -- snapshots -------------------------------------------------------------------
    def snapshot_tree(self, vm: Any) -> list[Any]:
        snap = self.props(vm, ["snapshot"]).get("snapshot")
        return list(snap.rootSnapshotList) if snap is not None else []

    def create_snapshot(
        self, vm: Any, name: str, *, description: str = "", memory: bool = False, quiesce: bool = False
    ) -> Any:
        self.record(
            "VirtualMachine.CreateSnapshot_Task",
            {"vm": vm._moId, "name": name, "memory": memory, "quiesce": quiesce},
        )
        task = self.client.call(
            f"create snapshot {name}",
            lambda: vm.CreateSnapshot_Task(
                name=name, description=description, memory=memory, quiesce=quiesce
            ),
        )
        return self._wait(task, f"create snapshot {name}")

    def remove_snapshot(self, snapshot: Any, *, children: bool = False) -> None:
        self.record(
            "VirtualMachineSnapshot.RemoveSnapshot_Task",
            {"snapshot": snapshot._moId, "removeChildren": children},
        )
        task = self.client.call(
            "remove snapshot", lambda: snapshot.RemoveSnapshot_Task(removeChildren=children)
        )
        self._wait(task, "remove snapshot")

    def revert_snapshot(self, snapshot: Any) -> None:
        self.record("VirtualMachineSnapshot.RevertToSnapshot_Task", {"snapshot": snapshot._moId})
        self._wait(self.client.call("revert snapshot", snapshot.RevertToSnapshot_Task), "revert snapshot")

    # -- changed block tracking -----------------------------------------------------
    def change_tracking(self, vm: Any) -> bool:
        """Whether ``config.changeTrackingEnabled`` is set (it takes effect at the next snapshot)."""
        return bool(self.props(vm, ["config.changeTrackingEnabled"]).get("config.changeTrackingEnabled"))

    def set_change_tracking(self, vm: Any, enabled: bool) -> None:
        """Switch CBT; a host refuses while the VM has snapshots (the task fails)."""
        spec = vim().vm.ConfigSpec(changeTrackingEnabled=enabled)
        self.reconfigure(vm, spec, what=f"change tracking {'on' if enabled else 'off'}")

    def snapshot_devices(self, snapshot: Any) -> list[Any]:
        """The devices of a snapshot's configuration (its disks carry the changeIds it was taken with)."""
        return list(
            self.client.retrieve_object(snapshot, ["config.hardware.device"]).get("config.hardware.device")
            or []
        )

    def changed_disk_areas(
        self, vm: Any, snapshot: Any, device_key: int, start: int, change_id: str
    ) -> tuple[int, list[tuple[int, int]]]:
        """One QueryChangedDiskAreas answer: the bytes it covers from ``start`` and the areas in them.

        ``change_id="*"`` asks for the allocated areas. The host's faults come back translated;
        :func:`ceso.backends.faults.fault_name` of the cause tells a refused changeId (FileFault,
        InvalidArgument) from a host without CBT (RestrictedVersion, NotSupported).
        """
        info = self.client.call(
            f"query changed areas of disk {device_key}",
            lambda: vm.QueryChangedDiskAreas(
                snapshot=snapshot, deviceKey=device_key, startOffset=start, changeId=change_id
            ),
        )
        areas = [(int(a.start), int(a.length)) for a in info.changedArea or []]
        return int(info.length), areas

    def path_exists(self, path: str) -> bool:
        """True if ``[ds] folder/name`` exists (a file or a folder), False if it or its folder does not.

        One HostDatastoreBrowser search. Used to refuse an ISO that is not
        there before a reconfigure (ESXi would accept the backing and fail
        later, at power on or in a VM question) and to check that ``vm delete``
        left no folder behind. Raises NotFoundError when the datastore itself
        is unknown on the host, and the translated fault of any other failure.
        """
        datastore, rel = split_datastore_path(path)
        browser = self.datastore_props(datastore, ["browser"])["browser"]
        folder, _, leaf = rel.rstrip("/").rpartition("/")
        search_in = f"[{datastore}] {folder}".rstrip()
        self.record(
            "HostDatastoreBrowser.SearchDatastore_Task", {"datastorePath": search_in, "matchPattern": [leaf]}
        )
        spec = vim().host.DatastoreBrowser.SearchSpec(matchPattern=[leaf])
        task = self.client.call(
            f"search {search_in}",
            lambda: browser.SearchDatastore_Task(datastorePath=search_in, searchSpec=spec),
        )
        try:
            result = self.client.wait_task(task, action=f"search {search_in}", timeout=self.task_timeout)
        except NotFoundError:
            return False  # the folder itself is missing
        # matchPattern is a glob; compare exactly so a name holding * or ? cannot match another file.
        return any(f.path == leaf for f in (getattr(result, "file", None) or []))


def _describe_spec(spec: Any) -> dict[str, Any]:
    """The parts of a ConfigSpec worth auditing; guestinfo values are summarised by size."""
    out: dict[str, Any] = {}
    for field in ("name", "guestId", "numCPUs", "memoryMB", "uuid", "firmware"):
        value = getattr(spec, field, None)
        if value not in (None, ""):
            out[field] = value
    files = getattr(spec, "files", None)
    if files is not None and files.vmPathName:
        out["files.vmPathName"] = files.vmPathName
    devices = []
    for change in getattr(spec, "deviceChange", None) or []:
        dev = change.device
        item: dict[str, Any] = {
            "operation": change.operation,
            "device": type(dev).__name__.rsplit(".", 1)[-1],
        }
        for attr in ("macAddress", "capacityInKB"):
            if getattr(dev, attr, None):
                item[attr] = getattr(dev, attr)
        backing = getattr(dev, "backing", None)
        for attr in ("fileName", "deviceName"):
            if backing is not None and getattr(backing, attr, None):
                item[attr] = getattr(backing, attr)
        devices.append(item)
    if devices:
        out["deviceChange"] = devices
    extra = getattr(spec, "extraConfig", None) or []
    if extra:
        out["extraConfig"] = {
            o.key: (
                f"<{len(o.value)} bytes>"
                if o.key.startswith("guestinfo.") and not o.key.endswith(".encoding")
                else o.value
            )
            for o in extra
        }
    return out
