"""A validated ``vm.reconfigure`` request from the options as typed.

Checked before any job exists: at least one change, the CPU count, sizes,
the ISO path's form (``[datastore] folder/file.iso``) and that the file is on
the datastore, then — against the VM read from its host — everything
:func:`ceso.vm.hardware.plan_reconfigure` checks (shrink, hot-add, disk and
NIC numbers, the port group). The worker plans again under the VM lock.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlmodel import Session

from ceso.errors import InvalidInputError, NotFoundError
from ceso.esxi.vmops import VmOps
from ceso.hosts.registry import client_for
from ceso.jobs.request import JobRequest
from ceso.runtime import Runtime
from ceso.vm.guards import refuse_template
from ceso.vm.hardware import HARDWARE_PROPERTIES, DiskGrow, ReconfigureChanges, plan_reconfigure
from ceso.vm.lifecycle import resolve_vm, resubmission
from ceso.vm.sizes import check_cpus, check_nic_number, parse_disk_bytes, parse_memory_mb

__all__ = ["ReconfigureOptions", "changes_from", "parse_iso_path", "reconfigure_request"]

_DATASTORE_PATH = re.compile(r"^\[([^\[\]]+)\] (\S.*)$")
_GLOB = set("*?[]")


@dataclass(frozen=True)
class ReconfigureOptions:
    """The options as typed on the command line (sizes still text)."""

    cpus: int | None = None
    memory: str | None = None
    disk_grow: tuple[tuple[str, str], ...] = ()
    network: str | None = None
    nic: int | None = None
    iso: str | None = None
    eject_iso: bool = False


def parse_iso_path(value: str) -> str:
    """Return ``value`` if it is ``[datastore] folder/file.iso``; InvalidInputError saying why not.

    Refused: another form, control characters, glob characters, empty,
    ``.`` or ``..`` path components, a leading ``/``, a name not ending in ``.iso``.
    """
    example = "[datastore] folder/file.iso"
    match = _DATASTORE_PATH.match(value)
    if match is None:
        raise InvalidInputError(f"--iso {value!r} is not a datastore path like {example!r}")
    datastore, path = match.groups()
    if any(unicodedata.category(c)[0] == "C" for c in value):
        raise InvalidInputError(f"--iso {value!r} contains control characters")
    if datastore != datastore.strip() or _GLOB & set(path):
        raise InvalidInputError(f"--iso {value!r}: spaces around the datastore name or * ? [ ] in the path")
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidInputError(
            f"--iso {value!r}: the path must be relative to the datastore, without . or .."
        )
    if not parts[-1].lower().endswith(".iso") or len(parts[-1]) <= len(".iso"):
        raise InvalidInputError(f"--iso {value!r} does not name an .iso file")
    return value


def changes_from(opts: ReconfigureOptions) -> ReconfigureChanges:
    """Parse and check the options' form (no host needed); InvalidInputError on any problem."""
    if opts.iso is not None and opts.eject_iso:
        raise InvalidInputError("--iso and --eject-iso exclude each other")
    if opts.nic is not None and opts.network is None:
        raise InvalidInputError("--nic chooses the NIC that --network moves; pass --network too")
    if opts.nic is not None:
        check_nic_number(opts.nic)
    if opts.cpus is not None:
        check_cpus(opts.cpus)
    grows = []
    for disk, size in opts.disk_grow:
        size_bytes = parse_disk_bytes(size, field="--disk-grow size")
        if size_bytes % 1024:
            raise InvalidInputError(f"--disk-grow size {size!r} must be a whole number of KiB")
        grows.append(DiskGrow(disk.strip(), size_bytes))
    changes = ReconfigureChanges(
        cpus=opts.cpus,
        memory_mb=parse_memory_mb(opts.memory) if opts.memory is not None else None,
        disk_grow=tuple(grows),
        network=opts.network,
        nic=opts.nic or 1,
        iso=parse_iso_path(opts.iso) if opts.iso is not None else None,
        eject_iso=opts.eject_iso,
    )
    if changes == ReconfigureChanges(nic=changes.nic):
        raise InvalidInputError(
            "nothing to change: pass --cpus, --memory, --disk-grow, --network, --iso or --eject-iso"
        )
    return changes


def reconfigure_request(
    runtime: Runtime,
    *,
    name: str,
    host: str | None,
    options: ReconfigureOptions,
    idempotency_key: str | None,
) -> tuple[JobRequest, list[str]]:
    """A validated ``vm.reconfigure`` request and the changes it makes as the VM stands now.

    Raises InvalidInputError (form, shrink, disk or NIC number), NotFoundError
    (host, VM, network, datastore, ISO file), ConflictError (template,
    hot-add disabled, snapshots under a disk to grow, no CD-ROM slot).
    """
    changes = changes_from(options)
    params = {"name": name, **changes.to_params()}
    again = resubmission(
        runtime, idempotency_key, kind="vm.reconfigure", name=name, host=host, **changes.to_params()
    )
    if again is not None:
        return again, []
    target = resolve_vm(runtime, name, host, HARDWARE_PROPERTIES)
    with Session(runtime.engine) as session:
        refuse_template(session, host=target.host, name=name, marked=target.marked_template)
    ops = VmOps(client_for(runtime, target.host))
    networks = list(ops.layout(network=changes.network).networks) if changes.network is not None else []
    plan = plan_reconfigure(target.props, changes, networks=networks, host=target.host, name=name)
    if changes.iso is not None and not ops.path_exists(changes.iso):
        raise NotFoundError(f"no file {changes.iso} on host {target.host}")
    request = JobRequest(
        kind="vm.reconfigure", host=target.host, target=name, params=params, idempotency_key=idempotency_key
    )
    return request, plan.changes or ["nothing: the VM already is as asked"]
