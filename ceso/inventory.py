"""Inventory across registered hosts: what ``vm list`` and ``vm info`` show."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlmodel import Session

from ceso.errors import ConflictError, NotFoundError
from ceso.esxi.inventory import VmSummary, list_vms, vm_info
from ceso.hosts.registry import client_for, get_host, list_hosts
from ceso.runtime import Runtime

__all__ = ["find_vm_host", "list_all_vms", "vm_details"]


def _host_names(runtime: Runtime, host: str | None) -> list[str]:
    with Session(runtime.engine) as session:
        if host is not None:
            return [get_host(session, host).name]
        return [h.name for h in list_hosts(session)]


def list_all_vms(runtime: Runtime, host: str | None = None) -> list[VmSummary]:
    """VMs of one host, or of every registered host read in parallel.

    Any host that fails makes the whole call fail with that host's error
    (a partial list would look complete).
    """
    names = _host_names(runtime, host)
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        results = list(pool.map(lambda n: list_vms(client_for(runtime, n)), names))
    return [vm for vms in results for vm in vms]


def find_vm_host(runtime: Runtime, name: str, host: str | None) -> str:
    """The host that has VM ``name``: ``host`` if given, else the only host that has it."""
    if host is not None:
        return _host_names(runtime, host)[0]
    owners = sorted({vm.host for vm in list_all_vms(runtime) if vm.name == name})
    if not owners:
        raise NotFoundError(f"no VM named {name!r} on any registered host")
    if len(owners) > 1:
        raise ConflictError(f"VM {name!r} exists on hosts {', '.join(owners)}: pass --host")
    return owners[0]


def vm_details(runtime: Runtime, name: str, host: str | None) -> VmSummary:
    """The VM ``name`` on ``host`` (or on the only host that has it)."""
    return vm_info(client_for(runtime, find_vm_host(runtime, name, host)), name)
