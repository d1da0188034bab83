"""The API route of an import: ``OvfManager.CreateImportSpec``, ``ResourcePool.ImportVApp`` and
the upload of each disk through the ``HttpNfcLease``.

Each disk file (a stream-optimized VMDK) is POSTed as it streams from the source to the
lease's device URL (``*`` there means the host itself), over the same pinned TLS and session
cookie as ``/folder`` (:class:`ceso.backup.datastore_http.DatastoreHttp`); the host writes it as
a thin VMFS disk. ``HttpNfcLeaseProgress`` is sent at least every :data:`KEEPALIVE_S` seconds
while bytes flow, so the lease (5 minutes on ESXi) never times out under a long upload.
:class:`LeaseImport` ends the lease on every path: completed after the last disk, aborted on
anything else (the caller does that in a cleanup step); ESXi removes an aborted import's VM
itself, and the caller's cleanup removes whatever is left all the same.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ceso.backends.api import ApiVmBackend
from ceso.backends.vmomi import vim
from ceso.errors import InvalidInputError, NotFoundError, OperationError, TimeoutExpiredError, TransientError
from ceso.images.ovf import OvfImage
from ceso.images.package import DiskStream

__all__ = ["KEEPALIVE_S", "LeaseImport"]

KEEPALIVE_S = 20.0
_READY_WAIT_S = 300.0
_BLOCK = 1 << 20


class LeaseImport:
    """One OVF import on one host through the API; ``vm`` is set once ImportVApp made it."""

    def __init__(
        self, ops: ApiVmBackend, *, name: str, datastore: str, network: str | None, marks: dict[str, str]
    ) -> None:
        self.ops, self.client = ops, ops.client
        self.name, self.datastore, self.network = name, datastore, network
        self.marks = marks  # extraConfig the new VM carries from its creation (the job's marker)
        self.lease: Any = None
        self.vm: Any = None
        self.file_items: list[Any] = []

    def create(self, descriptor: str, image: OvfImage) -> None:
        """CreateImportSpec (thin disks, every OVF network mapped to one port group) and ImportVApp.

        InvalidInputError if the host finds the descriptor unusable (before anything is made).
        """
        v = vim()
        layout = self.ops.layout(datastore=self.datastore, network=self.network)
        target_net = self.network or next(iter(layout.networks), None)
        mappings = [
            v.OvfManager.NetworkMapping(name=net, network=layout.networks[target_net])
            for net in dict.fromkeys(image.networks)
            if target_net in layout.networks
        ]
        params = v.OvfManager.CreateImportSpecParams(
            entityName=self.name,
            diskProvisioning="thin",
            networkMapping=mappings,
            locale="",
            deploymentOption="",
        )
        manager = self.client.content.ovfManager
        self.ops.record(
            "OvfManager.CreateImportSpec",
            {
                "entityName": self.name,
                "datastore": self.datastore,
                "diskProvisioning": "thin",
                "network": target_net,
            },
        )
        result = self.client.call(
            "create import spec",
            lambda: manager.CreateImportSpec(
                ovfDescriptor=descriptor,
                resourcePool=layout.resource_pool,
                datastore=layout.datastores[self.datastore],
                cisp=params,
            ),
        )
        if result.error:
            raise InvalidInputError(
                "the host cannot import this package: "
                + "; ".join(e.localizedMessage or str(e.fault) for e in result.error)
            )
        spec = result.importSpec
        spec.configSpec.firmware = image.firmware
        spec.configSpec.extraConfig = [
            *(spec.configSpec.extraConfig or []),
            *(v.option.OptionValue(key=k, value=val) for k, val in self.marks.items()),
        ]
        self.file_items = list(result.fileItem or [])
        self.ops.record(
            "ResourcePool.ImportVApp", {"name": self.name, "files": [f.path for f in self.file_items]}
        )
        self.lease = self.client.call(
            "import VM",
            lambda: layout.resource_pool.ImportVApp(spec=spec, folder=layout.vm_folder, host=layout.host),
        )
        info = self._ready()
        self.vm = info.entity
        self._urls = {u.importKey: u.url for u in info.deviceUrl or []}

    def _ready(self) -> Any:
        deadline = time.monotonic() + _READY_WAIT_S
        while True:
            props = self.client.retrieve_object(self.lease, ["state", "info", "error"])
            state = props.get("state")
            if state == "ready":
                return props["info"]
            if state == "error":
                fault = props.get("error")
                raise OperationError(
                    f"the host refused the import: {getattr(fault, 'localizedMessage', fault)}"
                )
            if time.monotonic() > deadline:
                raise TimeoutExpiredError(f"the import lease was not ready after {_READY_WAIT_S:.0f}s")
            time.sleep(0.5)

    def upload(self, disk: DiskStream, *, percent: Callable[[], int]) -> int:
        """POST ``disk``'s stream-optimized bytes to its device URL; returns the bytes sent.
        ``percent()`` is how far the whole import is, for the lease's keep-alive."""
        item = next((f for f in self.file_items if f.path == disk.disk.href), None)
        url = self._urls.get(item.deviceId) if item is not None else None
        if item is None or url is None:
            raise OperationError(f"the import lease has no upload URL for {disk.disk.href}")
        size = disk.size if disk.size is not None else item.size
        target = urlsplit(url)
        self.ops.record("HttpNfcLease upload", {"file": disk.disk.href, "url": target.path, "bytes": size})
        from ceso.backup.datastore_http import DatastoreHttp

        conn = DatastoreHttp(self.client).connection()
        last_beat = time.monotonic()

        def sent() -> None:
            nonlocal last_beat
            if time.monotonic() - last_beat >= KEEPALIVE_S:
                last_beat = time.monotonic()
                self.keep_alive(percent())

        try:
            conn.putrequest("POST", f"{target.path}?{target.query}" if target.query else target.path)
            conn.putheader("Content-Type", "application/x-vnd.vmware-streamVmdk")
            conn.putheader("Content-Length", str(size))
            conn.putheader("Cookie", self.client.session_cookie())
            conn.endheaders()
            total = 0
            while chunk := disk.reader.read(_BLOCK):
                conn.send(chunk)
                total += len(chunk)
                sent()
            response = conn.getresponse()
            body = response.read(2000)
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            raise TransientError(
                f"upload of {disk.disk.href} to host {self.ops.host} broke off: {exc}"
            ) from exc
        finally:
            conn.close()
        if response.status not in (200, 201):
            raise OperationError(
                f"host {self.ops.host} refused the upload of {disk.disk.href}: HTTP {response.status} "
                f"{body.decode('utf-8', 'replace').strip()[:200]}"
            )
        return total

    def keep_alive(self, percent: int) -> None:
        """HttpNfcLeaseProgress: tells the host the import is alive, and how far it is."""
        if self.lease is not None:
            pct = max(0, min(100, percent))
            self.client.call("import progress", lambda: self.lease.HttpNfcLeaseProgress(percent=pct))

    def complete(self) -> None:
        self.ops.record("HttpNfcLease.HttpNfcLeaseComplete", {})
        self.client.call("complete import", self.lease.HttpNfcLeaseComplete)
        self.lease = None

    def abort(self) -> None:
        """HttpNfcLeaseAbort, if a lease is open (a lease already gone is fine)."""
        if self.lease is None:
            return
        lease, self.lease = self.lease, None
        self.ops.record("HttpNfcLease.HttpNfcLeaseAbort", {})
        with contextlib.suppress(NotFoundError, OperationError):  # expired or ended: nothing to abort
            self.client.call("abort import", lease.HttpNfcLeaseAbort)
