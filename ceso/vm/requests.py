"""Turning VM command options into validated job requests (shared by the CLI and cesod).

Everything that can be checked before a job exists is checked here — names,
sizes, addresses, keys, cloud-init size, the template's validation, whether
the name is free on the host — so bad input is refused with nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from ceso.errors import ConflictError, InvalidInputError, NotFoundError
from ceso.esxi.inventory import find_vm
from ceso.hosts.registry import client_for, get_host
from ceso.inventory import find_vm_host
from ceso.jobs.request import JobRequest
from ceso.jobs.store import find_by_idempotency_key
from ceso.runtime import Runtime
from ceso.vm.documents import read_guest_files
from ceso.vm.guest import GuestSpec
from ceso.vm.names import validate_vm_name
from ceso.vm.sizes import check_cpus, parse_disk_bytes, parse_memory_mb
from ceso.vm.templates import get_template, require_usable

__all__ = ["GuestOptions", "HardwareOptions", "clone_request", "create_request", "guest_spec"]


@dataclass(frozen=True)
class GuestOptions:
    """The identity options as typed (key and userdata arguments may be file paths)."""

    hostname: str | None = None
    ip: str | None = None
    gateway: str | None = None
    ip6: str | None = None
    gateway6: str | None = None
    dns: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    user: str = "ubuntu"
    ssh_keys: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    userdata_file: str | None = None
    vendordata_file: str | None = None


@dataclass(frozen=True)
class HardwareOptions:
    cpus: int | None = None
    memory: str | None = None
    disk: str | None = None
    datastore: str | None = None
    network: str | None = None
    power_on: bool = True
    wait_ip: bool = False
    wait_ip_timeout_s: float = 600.0
    extra: dict[str, Any] = field(default_factory=dict)


def guest_spec(opts: GuestOptions) -> GuestSpec:
    """Resolve key files and userdata files into a GuestSpec (InvalidInputError on any problem)."""
    keys, userdata, vendordata = read_guest_files(opts.ssh_keys, opts.userdata_file, opts.vendordata_file)
    return GuestSpec(
        hostname=opts.hostname,
        ip=opts.ip,
        gateway=opts.gateway,
        ip6=opts.ip6,
        gateway6=opts.gateway6,
        dns=list(opts.dns),
        search=list(opts.search),
        user=opts.user,
        ssh_keys=keys,
        packages=list(opts.packages),
        userdata=userdata,
        vendordata=vendordata,
    )


def _hardware_params(hw: HardwareOptions) -> dict[str, Any]:
    params: dict[str, Any] = {
        "cpus": check_cpus(hw.cpus) if hw.cpus is not None else None,
        "memory_mb": parse_memory_mb(hw.memory) if hw.memory else None,
        "disk_bytes": parse_disk_bytes(hw.disk) if hw.disk else None,
        "datastore": hw.datastore,
        "network": hw.network,
        "power_on": hw.power_on,
        "wait_ip": hw.wait_ip,
        "wait_ip_timeout_s": hw.wait_ip_timeout_s,
    }
    if hw.wait_ip and not hw.power_on:
        raise InvalidInputError("--wait-ip needs the VM powered on (drop --no-power-on)")
    return params


def _check_free(runtime: Runtime, host: str, name: str, idempotency_key: str | None) -> None:
    """ConflictError if ``name`` is taken on ``host`` — unless this is a resubmission of a known key,
    whose first job may well have made that VM (submit then returns that job)."""
    if idempotency_key is not None and find_by_idempotency_key(runtime.engine, idempotency_key) is not None:
        return
    try:
        find_vm(client_for(runtime, host), name)
    except NotFoundError:
        return
    except ConflictError:
        pass
    raise ConflictError(f"a VM named {name!r} already exists on host {host}")


def create_request(
    runtime: Runtime,
    *,
    name: str,
    template: str,
    host: str | None,
    hw: HardwareOptions,
    guest: GuestOptions,
    force: bool,
    idempotency_key: str | None,
    check_host: bool = True,
) -> tuple[JobRequest, dict[str, str]]:
    """A validated ``vm.create`` request and the decoded cloud-init documents (for previews)."""
    validate_vm_name(name)
    spec = guest_spec(guest)
    params = _hardware_params(hw)
    with Session(runtime.engine) as session:
        if host is not None:
            get_host(session, host)
        tmpl = get_template(session, template, host)
    require_usable(tmpl, force=force)
    documents = spec.check(name)
    if check_host:
        _check_free(runtime, tmpl.host, name, idempotency_key)
    params.update(name=name, template=tmpl.name, guest=spec.to_params(), force=force)
    return JobRequest(
        kind="vm.create", host=tmpl.host, target=name, params=params, idempotency_key=idempotency_key
    ), documents


def clone_request(
    runtime: Runtime,
    *,
    source: str,
    name: str,
    host: str | None,
    hw: HardwareOptions,
    guest: GuestOptions,
    hot: bool,
    shutdown_source: bool,
    idempotency_key: str | None,
    check_host: bool = True,
) -> tuple[JobRequest, dict[str, str]]:
    """A validated ``vm.clone`` request and the decoded cloud-init documents."""
    validate_vm_name(source, field="source VM name")
    validate_vm_name(name)
    if hot and shutdown_source:
        raise InvalidInputError("--hot and --shutdown-source exclude each other")
    if source == name:
        raise InvalidInputError("the clone needs a name different from its source")
    spec = guest_spec(guest)
    params = _hardware_params(hw)
    owner = find_vm_host(runtime, source, host)
    documents = spec.check(name)
    if check_host:
        _check_free(runtime, owner, name, idempotency_key)
    params.update(name=name, source=source, guest=spec.to_params(), hot=hot, shutdown_source=shutdown_source)
    return JobRequest(
        kind="vm.clone", host=owner, target=name, params=params, idempotency_key=idempotency_key
    ), documents
