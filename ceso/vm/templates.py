"""Golden templates: a powered-off VM registered in SQL, validated by what the API can see.

Checks run against the host with one property-collector read; each check's
result and time is stored on the template row. In-guest checks (cloud-init
installed, VMware datasource enabled, ``ds=nocloud`` not forced) need guest
operations credentials, which ceso does not hold yet: they are reported as
``not_checked`` and do not fail a template.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ceso.backends.vmomi import vim
from ceso.db.engine import session_scope
from ceso.db.models import Template
from ceso.db.types import utcnow
from ceso.errors import ConflictError, InvalidInputError, NotFoundError
from ceso.esxi.inventory import find_vm
from ceso.hosts.registry import client_for, get_host
from ceso.runtime import Runtime
from ceso.vm.names import validate_vm_name

__all__ = [
    "TEMPLATE_PROPERTIES",
    "add_template",
    "evaluate_template",
    "get_template",
    "list_templates",
    "remove_template",
    "template_to_dict",
    "validate_template",
]

#: extraConfig key an import writes on a VM whose image declares VMware Tools in its disk
#: (``ddb.toolsVersion``): such a VM reports no tools until its first boot, yet has them.
IMAGE_TOOLS_KEY = "ceso.image.toolsVersion"

TEMPLATE_PROPERTIES = [
    "config.extraConfig",
    "config.uuid",
    "config.guestId",
    "config.firmware",
    "config.hardware.device",
    "config.tools.toolsVersion",
    "guest.toolsStatus",
    "runtime.powerState",
    "snapshot",
]
_LINUX = re.compile(r"ubuntu|debian|linux|rhel|centos|sles|rocky|alma|fedora|coreos|photon", re.IGNORECASE)
IN_GUEST_CHECKS = ("cloud_init_present", "vmware_datasource_enabled", "nocloud_not_forced")


def template_to_dict(t: Template) -> dict[str, Any]:
    return {
        "name": t.name,
        "host": t.host,
        "vm_uuid": t.vm_uuid,
        "status": t.status,
        "checks": t.checks,
        "validated_at": t.validated_at.isoformat() if t.validated_at else None,
        "created_at": t.created_at.isoformat(),
    }


def _check(name: str, ok: bool | None, detail: str) -> dict[str, Any]:
    state = "not_checked" if ok is None else ("passed" if ok else "failed")
    return {"check": name, "result": state, "detail": detail, "checked_at": utcnow().isoformat()}


def evaluate_template(props: dict[str, Any]) -> list[dict[str, Any]]:
    """The API-visible checks of a template VM, from TEMPLATE_PROPERTIES."""
    v = vim()
    devices = props.get("config.hardware.device") or []
    disks = [d for d in devices if isinstance(d, v.vm.device.VirtualDisk)]
    nics = [d for d in devices if isinstance(d, v.vm.device.VirtualEthernetCard)]
    power = str(props.get("runtime.powerState"))
    snapshot = props.get("snapshot")
    guest_id = str(props.get("config.guestId") or "")
    tools_status = str(props.get("guest.toolsStatus") or "")
    tools_version = int(props.get("config.tools.toolsVersion") or 0)
    declared = _image_tools(props.get("config.extraConfig"))
    thick = [d.backing.fileName for d in disks if not getattr(d.backing, "thinProvisioned", False)]
    firmware = str(props.get("config.firmware") or "bios")
    checks = [
        _check("powered_off", power == "poweredOff", f"power state {power}"),
        _check(
            "no_snapshots",
            snapshot is None or not snapshot.rootSnapshotList,
            "no snapshots" if snapshot is None else "has snapshots: clones would copy a delta chain",
        ),
        _check("has_disk", bool(disks), f"{len(disks)} disk(s)"),
        _check(
            "thin_disks", bool(disks) and not thick, "all thin" if not thick else f"thick: {', '.join(thick)}"
        ),
        _check(
            "vmxnet3_nic",
            any(isinstance(n, v.vm.device.VirtualVmxnet3) for n in nics),
            ", ".join(type(n).__name__.rsplit(".", 1)[-1] for n in nics) or "no NIC",
        ),
        _check("linux_guest", bool(_LINUX.search(guest_id)), f"guest id {guest_id or 'unset'}"),
        _tools_check(tools_status, tools_version, declared),
        _check("firmware", firmware in ("bios", "efi"), f"firmware {firmware}"),
    ]
    checks += [
        _check(name, None, "needs guest credentials (guest operations API)") for name in IN_GUEST_CHECKS
    ]
    return checks


def _image_tools(extra: Any) -> int:
    """The tools version an import recorded from the image's disk (:data:`IMAGE_TOOLS_KEY`), or 0."""
    for option in extra or []:
        if str(getattr(option, "key", "")).lower() == IMAGE_TOOLS_KEY.lower():
            value = str(getattr(option, "value", ""))
            return int(value) if value.isdigit() else 0
    return 0


def _tools_check(status: str, version: int, declared: int) -> dict[str, Any]:
    """Tools reported by the host, or (a VM never booted reports none) declared by its imported image."""
    if status != "toolsNotInstalled" and (
        version > 0 or status in ("toolsOk", "toolsOld", "toolsNotRunning")
    ):
        return _check(
            "vmware_tools_installed", True, f"tools status {status or 'unknown'}, version {version}"
        )
    if version == 0 and declared > 0:
        kind = "guest-managed (open-vm-tools)" if declared == 2**31 - 1 else f"version {declared}"
        return _check(
            "vmware_tools_installed", True, f"not booted yet; the imported image's disk declares tools {kind}"
        )
    return _check("vmware_tools_installed", False, f"tools status {status or 'unknown'}, version {version}")


def _status(checks: list[dict[str, Any]]) -> str:
    return "failed" if any(c["result"] == "failed" for c in checks) else "passed"


def get_template(session: Session, name: str, host: str | None = None) -> Template:
    """The template ``name`` (on ``host``, or the only host that has one of that name)."""
    query = select(Template).where(Template.name == name)
    if host is not None:
        query = query.where(Template.host == host)
    found = list(session.exec(query).all())
    if not found:
        raise NotFoundError(
            f"no template {name!r}"
            + (f" on host {host}" if host else "")
            + " (register one with `ceso template add VM --host H`)"
        )
    if len(found) > 1:
        raise ConflictError(
            f"template {name!r} exists on hosts {', '.join(t.host for t in found)}: pass --host"
        )
    return found[0]


def list_templates(session: Session, host: str | None = None) -> list[Template]:
    query = select(Template).order_by(Template.host, Template.name)
    if host is not None:
        query = query.where(Template.host == host)
    return list(session.exec(query).all())


def validate_template(runtime: Runtime, name: str, host: str | None = None) -> Template:
    """Run the checks against the host and store them; returns the updated row."""
    with Session(runtime.engine) as session:
        template = get_template(session, name, host)
    client = client_for(runtime, template.host)
    props = client.retrieve_object(find_vm(client, template.name), TEMPLATE_PROPERTIES)
    checks = evaluate_template(props)
    with session_scope(runtime.engine) as session:
        row = get_template(session, template.name, template.host)
        row.checks = checks
        row.status = _status(checks)
        row.vm_uuid = props.get("config.uuid")
        row.validated_at = utcnow()
        session.add(row)
    return row


def add_template(runtime: Runtime, vm_name: str, host: str) -> Template:
    """Register VM ``vm_name`` on ``host`` as a template and validate it at once."""
    validate_vm_name(vm_name)
    with Session(runtime.engine) as session:
        get_host(session, host)
    client = client_for(runtime, host)
    find_vm(client, vm_name)  # NotFoundError before anything is written
    try:
        with session_scope(runtime.engine) as session:
            session.add(Template(name=vm_name, host=host))
    except sa.exc.IntegrityError as exc:
        raise ConflictError(f"template {vm_name!r} is already registered on host {host}") from exc
    return validate_template(runtime, vm_name, host)


def remove_template(runtime: Runtime, name: str, host: str | None = None) -> Template:
    """Forget a template (the VM itself is not touched)."""
    with session_scope(runtime.engine) as session:
        template = get_template(session, name, host)
        session.delete(template)
    return template


def require_usable(template: Template, *, force: bool) -> None:
    """Refuse a template that failed validation unless ``force``."""
    if template.status == "failed" and not force:
        failed = ", ".join(c["check"] for c in template.checks if c["result"] == "failed")
        raise InvalidInputError(
            f"template {template.name} failed validation ({failed}); fix it and run `ceso template validate "
            f"{template.name}`, or pass --force",
            code="template_invalid",
        )
