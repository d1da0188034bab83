"""The fixed objects of a standalone host, read in one request and kept per session.

Every VM job needs the host's datacenter (file and disk calls name it), its VM
folder and resource pool (CreateVM_Task), and its datastores and networks by
name. They hardly ever change, so each pooled session
(:class:`ceso.esxi.client.EsxiClient`) keeps one copy in its
:class:`LayoutCache`, read again:

* after the session logged in again (the host may have restarted);
* when older than ``ttl_s`` (how long a removed datastore or network can
  still be offered);
* when a caller names a datastore or network the copy lacks (one added since
  is found, not refused);
* after :meth:`LayoutCache.forget`, which callers use when the host answers
  that one of the cached objects is gone (``ManagedObjectNotFound``; see
  :func:`names_gone_object`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ceso.backends.faults import fault_name
from ceso.backends.vmomi import vim
from ceso.errors import NotFoundError
from ceso.esxi.traversal import LAYOUT_WALK

if TYPE_CHECKING:
    from ceso.esxi.client import EsxiClient

__all__ = ["LAYOUT_TTL_S", "HostLayout", "LayoutCache", "names_gone_object", "read_layout"]

#: Longest a session keeps its layout without reading it again.
LAYOUT_TTL_S = 300.0

LAYOUT_PROPERTIES = {
    "Datacenter": ["vmFolder"],
    "ComputeResource": ["resourcePool", "host"],
    "Datastore": ["name"],
    "Network": ["name"],
}


@dataclass(frozen=True)
class HostLayout:
    """The fixed objects of a standalone host: one datacenter, one compute resource."""

    datacenter: Any
    vm_folder: Any
    resource_pool: Any
    host: Any
    datastores: dict[str, Any]
    networks: dict[str, Any]

    def holds(self, obj: Any) -> bool:
        """True if ``obj`` (a managed object reference) is one of this layout's objects."""
        moid = getattr(obj, "_moId", None)
        fixed = (self.datacenter, self.vm_folder, self.resource_pool, self.host)
        return moid is not None and any(
            getattr(o, "_moId", None) == moid
            for o in (*fixed, *self.datastores.values(), *self.networks.values())
        )


def read_layout(client: EsxiClient) -> HostLayout:
    """The host's layout, read in one property-collector request (NotFoundError if it has no datacenter)."""
    v = vim()
    rows = client.retrieve_walk(LAYOUT_WALK, LAYOUT_PROPERTIES)
    dcs = [r for r in rows if isinstance(r["obj"], v.Datacenter)]
    computes = [r for r in rows if isinstance(r["obj"], v.ComputeResource) and r.get("host")]
    if not dcs or not computes:
        raise NotFoundError(f"host {client.name} shows no {'datacenter' if not dcs else 'compute resource'}")
    datastores = {r["name"]: r["obj"] for r in rows if isinstance(r["obj"], v.Datastore) and "name" in r}
    networks = {r["name"]: r["obj"] for r in rows if isinstance(r["obj"], v.Network) and "name" in r}
    dc, compute = dcs[0], computes[0]
    return HostLayout(
        datacenter=dc["obj"],
        vm_folder=dc["vmFolder"],
        resource_pool=compute["resourcePool"],
        host=compute["host"][0],
        datastores=datastores,
        networks=networks,
    )


@dataclass(frozen=True)
class _Entry:
    layout: HostLayout
    logins: int  # the session's login count when read: a re-login makes the entry stale
    read_at: float


class LayoutCache:
    """One session's copy of its host's layout (see the module docstring for when it is read again)."""

    def __init__(self, client: EsxiClient, *, ttl_s: float = LAYOUT_TTL_S) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.reads = 0
        self._entry: _Entry | None = None
        # One reader at a time: concurrent jobs of a process wait for one read instead of each making it.
        self._lock = threading.Lock()

    def get(self, *, datastore: str | None = None, network: str | None = None) -> HostLayout:
        """The layout; read first if stale or lacking the named ``datastore`` or ``network``.

        A name still missing after a fresh read is the caller's to refuse.
        """
        with self._lock:
            entry = self._entry
            if entry is None or self._stale(entry, datastore, network):
                layout = read_layout(self.client)
                self.reads += 1
                # Read the login count after the read: a re-login during it gives a layout of the new session.
                entry = self._entry = _Entry(layout, self.client.logins, time.monotonic())
            return entry.layout

    def _stale(self, entry: _Entry, datastore: str | None, network: str | None) -> bool:
        return (
            entry.logins != self.client.logins
            or time.monotonic() - entry.read_at > self.ttl_s
            or (datastore is not None and datastore not in entry.layout.datastores)
            or (network is not None and network not in entry.layout.networks)
        )

    def forget(self) -> None:
        """Drop the copy: the next :meth:`get` reads the layout again."""
        with self._lock:
            self._entry = None


def names_gone_object(exc: BaseException, layout: HostLayout) -> bool:
    """True if ``exc`` (a translated error) is the host saying an object of ``layout`` no longer exists."""
    cause = exc.__cause__
    return (
        isinstance(exc, NotFoundError)
        and cause is not None
        and fault_name(cause) == "ManagedObjectNotFound"
        and layout.holds(getattr(cause, "obj", None))
    )
