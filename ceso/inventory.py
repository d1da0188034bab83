"""Inventory across registered hosts: what ``vm list`` and ``vm info`` show.

These are the reads people and agents run most, so the registered hosts are
read with the database driver (:mod:`ceso.hosts.direct`) when it can answer,
and the listing itself is parsed as XML (:func:`ceso.esxi.inventory.list_vms`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ceso.errors import CesoError, ConflictError, NotFoundError
from ceso.esxi.inventory import VmSummary, list_vms, vm_info
from ceso.hosts.direct import HostLogin, read_host_logins
from ceso.runtime import Runtime

__all__ = ["HostFailure", "find_vm_host", "list_all_vms", "list_answering_hosts", "vm_details"]


def _hosts(runtime: Runtime, host: str | None) -> list[HostLogin]:
    """Host ``host`` (NotFoundError if unknown) or every registered host, by name."""
    logins = read_host_logins(runtime.settings.database_url, host)
    if logins is not None:
        return logins
    from sqlmodel import Session

    from ceso.hosts.registry import get_host, list_hosts

    with Session(runtime.engine) as session:
        rows = [get_host(session, host)] if host is not None else list_hosts(session)
        return [HostLogin(h.name, h.url, h.username, h.thumbprint) for h in rows]


def _list(runtime: Runtime, hosts: list[HostLogin]) -> list[VmSummary]:
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        results = list(pool.map(lambda h: list_vms(runtime.client(h)), hosts))
    return [vm for vms in results for vm in vms]


def list_all_vms(runtime: Runtime, host: str | None = None) -> list[VmSummary]:
    """VMs of one host, or of every registered host read in parallel.

    Any host that fails makes the whole call fail with that host's error
    (a partial list would look complete).
    """
    return _list(runtime, _hosts(runtime, host))


@dataclass(frozen=True)
class HostFailure:
    """A host that did not answer a listing: its name and the error it raised."""

    host: str
    error: CesoError

    def to_dict(self) -> dict[str, str]:
        return {"host": self.host, "code": self.error.code, "message": self.error.message}


def list_answering_hosts(
    runtime: Runtime, host: str | None = None
) -> tuple[list[VmSummary], list[HostFailure]]:
    """VMs of every host that answers, read in parallel, and one :class:`HostFailure` per host
    that did not (unreachable, refused login, …), in host order. An unknown ``host`` still raises."""
    hosts = _hosts(runtime, host)
    if not hosts:
        return [], []

    def read(login: HostLogin) -> list[VmSummary] | HostFailure:
        try:
            return list_vms(runtime.client(login))
        except CesoError as exc:
            return HostFailure(login.name, exc)

    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        results = list(pool.map(read, hosts))
    vms = [vm for r in results if not isinstance(r, HostFailure) for vm in r]
    return vms, [r for r in results if isinstance(r, HostFailure)]


def _owner(runtime: Runtime, name: str, host: str | None) -> HostLogin:
    hosts = _hosts(runtime, host)
    if host is not None:
        return hosts[0]
    owners = sorted({vm.host for vm in _list(runtime, hosts) if vm.name == name})
    if not owners:
        raise NotFoundError(f"no VM named {name!r} on any registered host")
    if len(owners) > 1:
        raise ConflictError(f"VM {name!r} exists on hosts {', '.join(owners)}: pass --host")
    return next(h for h in hosts if h.name == owners[0])


def find_vm_host(runtime: Runtime, name: str, host: str | None) -> str:
    """The host that has VM ``name``: ``host`` if given, else the only host that has it."""
    return _owner(runtime, name, host).name


def vm_details(runtime: Runtime, name: str, host: str | None) -> VmSummary:
    """The VM ``name`` on ``host`` (or on the only host that has it)."""
    return vm_info(runtime.client(_owner(runtime, name, host)), name)
