"""The specs of the VM operations (see :mod:`ceso.specs`): what ``vm create`` and ``vm clone`` take.

Each field is spelled like the CLI option it is (``--no-power-on`` → ``no_power_on``) and
described once, for the CLI's help and cesod's schema alike. Everything that can be checked
without a host or SQL is checked here, by the shared validators; what needs them (the
template, the source VM, a free name) is checked by the request builders of
:mod:`ceso.vm.requests`.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from ceso.cloudinit.nicargs import split_list
from ceso.errors import InvalidInputError
from ceso.specs import Spec
from ceso.vm.documents import MAX_DOCUMENT_FILE
from ceso.vm.guest import GuestSpec
from ceso.vm.names import validate_vm_name
from ceso.vm.sizes import check_cpus, parse_disk_bytes, parse_memory_mb

__all__ = ["CloneVm", "CreateVm", "GuestIdentity", "NewVm"]


def _vm_name(name: str) -> str:
    return validate_vm_name(name)


def _source_name(name: str) -> str:
    return validate_vm_name(name, field="source VM name")


def _cpus(cpus: int | None) -> int | None:
    return None if cpus is None else check_cpus(cpus)


def _memory(text: str | None) -> str | None:
    if text is not None:
        parse_memory_mb(text)
    return text


def _disk(text: str | None) -> str | None:
    if text is not None:
        parse_disk_bytes(text)
    return text


def _iso_path(text: str | None) -> str | None:
    from ceso.vm.change_specs import parse_iso_path

    return None if text is None else parse_iso_path(text)


def _guest_id(text: str | None) -> str | None:
    """A guest OS identifier as ESXi spells them (``ubuntu64Guest``, ``otherLinux64Guest``)."""
    if text is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", text):
        raise InvalidInputError(f"--guest-id {text[:70]!r} is not a guest identifier such as ubuntu64Guest")
    return text


def _seconds_from_one(value: float) -> float:
    if not math.isfinite(value) or value < 1:
        raise InvalidInputError(f"--wait-ip-timeout {value!r} must be a finite number of seconds, at least 1")
    return value


def _list(value: Any) -> Any:
    """``"a,b"`` or ``["a,b", "c"]`` → ``["a", "b", "c"]``; anything else is left to the type check."""
    if isinstance(value, str) or (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
        return split_list(value)
    return value


def _key_lines(keys: list[str]) -> list[str]:
    from ceso.cloudinit.sshkeys import SSH_KEY_TYPES

    for key in keys:
        if not any(word in SSH_KEY_TYPES or word == "ssh-dss" for word in key.split()):
            raise InvalidInputError(f"ssh_key {key[:40]!r}: give public key lines (cesod reads no files)")
    return keys


_Document = Annotated[str | None, Field(max_length=MAX_DOCUMENT_FILE)]
_Names = Annotated[list[str], BeforeValidator(_list)]


class GuestIdentity(Spec):
    """Identity, network and cloud-init documents of a new guest (create, clone, restore)."""

    hostname: str | None = Field(
        None, description="Guest host name (default: the VM name, if it is a valid host name)."
    )
    ip: str | None = Field(
        None,
        description="IPv4 address of the first NIC as CIDR, e.g. 192.0.2.10/24, or dhcp (default: DHCP).",
    )
    gateway: str | None = Field(None, description="IPv4 default gateway (a route, inside the ip's subnet).")
    ip6: str | None = Field(
        None, description="IPv6 address of the first NIC as CIDR, e.g. 2001:db8::10/64, or dhcp."
    )
    gateway6: str | None = Field(
        None, description="IPv6 default gateway (a route, inside the ip6's subnet or link-local)."
    )
    dns: _Names = Field([], description="DNS servers (IPv4/IPv6), comma-separated or repeated.")
    search: _Names = Field([], description="DNS search domains, comma-separated or repeated.")
    user: str = Field("ubuntu", description="The login user cloud-init creates.")
    ssh_key: Annotated[list[str], AfterValidator(_key_lines)] = Field(
        [], description="Authorized SSH public key lines (repeatable)."
    )
    package: list[str] = Field([], description="Packages to install on first boot (repeatable).")
    userdata: _Document = Field(
        None, description="Extra #cloud-config merged into ceso's userdata (it cannot remove the SSH keys)."
    )
    vendordata: _Document = Field(None, description="cloud-init vendordata, passed through.")

    @property
    def guest(self) -> GuestSpec:
        """The guest's identity, for its cloud-init documents."""
        return GuestSpec(
            hostname=self.hostname,
            ip=self.ip,
            gateway=self.gateway,
            ip6=self.ip6,
            gateway6=self.gateway6,
            dns=list(self.dns),
            search=list(self.search),
            user=self.user,
            ssh_keys=list(self.ssh_key),
            packages=list(self.package),
            userdata=self.userdata,
            vendordata=self.vendordata,
        )


class NewVm(GuestIdentity):
    """Size, placement and power of a new VM besides its guest identity (create and clone)."""

    cpus: Annotated[int | None, AfterValidator(_cpus)] = Field(
        None, description="Virtual CPUs (default: the source's)."
    )
    memory: Annotated[str | None, AfterValidator(_memory)] = Field(
        None,
        description="Memory, e.g. 4G or 4096M (default: the source's); a bare number is MiB, at least 256.",
    )
    disk: Annotated[str | None, AfterValidator(_disk)] = Field(
        None,
        description="Grow the first disk to SIZE, e.g. 40G (never shrinks); a bare number is GiB, below 1024.",
    )
    datastore: str | None = Field(None, description="Datastore for the new VM (default: the source's).")
    network: str | None = Field(None, description="Port group of the first NIC (default: the source's).")
    no_power_on: bool = Field(False, description="Leave the new VM powered off.")
    wait_ip: bool = Field(False, description="Wait until VMware Tools report the guest's address.")
    wait_ip_timeout: Annotated[float, AfterValidator(_seconds_from_one)] = Field(
        600.0, le=86_400, description="How long to wait for the guest's address, in seconds."
    )

    @model_validator(mode="after")
    def _power_for_ip(self) -> Self:
        if self.wait_ip and self.no_power_on:
            raise InvalidInputError("--wait-ip needs the VM powered on (drop --no-power-on)")
        return self

    @property
    def memory_mb(self) -> int | None:
        return None if self.memory is None else parse_memory_mb(self.memory)

    @property
    def disk_bytes(self) -> int | None:
        return None if self.disk is None else parse_disk_bytes(self.disk)


#: The fields a template's guest identity (cloud-init) fills in, which a blank VM has no use for.
_CLOUD_INIT_FIELDS = (
    "hostname", "ip", "gateway", "ip6", "gateway6", "dns", "search", "ssh_key", "package", "userdata",
    "vendordata",
)  # fmt: skip


class CreateVm(NewVm):
    """``vm.create``: a new VM from a registered template, or (``blank``) an empty one to install
    from an ISO. Exactly one of the two; a blank VM needs its host, CPUs, memory and disk."""

    kind = "vm.create"

    name: Annotated[str, AfterValidator(_vm_name)] = Field(description="Name of the new VM.")
    template: str | None = Field(
        None, description="Registered template to copy (see `ceso template list`); or give --blank."
    )
    blank: bool = Field(
        False,
        description="An empty VM instead of a template's copy: EFI, a new thin disk on a PVSCSI "
        "controller, a VMXNET3 NIC (needs --host, --cpus, --memory, --disk).",
    )
    iso: Annotated[str | None, AfterValidator(_iso_path)] = Field(
        None, description="Blank VM: ISO to boot, as '[datastore] path/file.iso' (connected at power-on)."
    )
    guest_id: Annotated[str | None, AfterValidator(_guest_id)] = Field(
        None, description="Blank VM: the guest OS identifier ESXi tunes for (default: ubuntu64Guest)."
    )
    host: str | None = Field(
        None, description="Host of the template (optional when the template name is unique); of a blank VM."
    )
    force: bool = Field(False, description="Use a template that failed validation.")

    @model_validator(mode="after")
    def _template_or_blank(self) -> Self:
        if self.blank == (self.template is not None):
            raise InvalidInputError("give --template NAME or --blank (one of them)")
        if not self.blank:
            given = [f for f in ("iso", "guest_id") if getattr(self, f) is not None]
            if given:
                raise InvalidInputError(f"--{given[0].replace('_', '-')} is for a blank VM (--blank)")
            return self
        missing = [f for f in ("host", "cpus", "memory", "disk") if getattr(self, f) is None]
        if missing:
            raise InvalidInputError(f"--blank needs {', '.join('--' + f for f in missing)}")
        cloud = [f for f in _CLOUD_INIT_FIELDS if getattr(self, f)]
        if cloud or self.wait_ip or self.force:
            extra = (cloud or ["wait_ip" if self.wait_ip else "force"])[0].replace("_", "-")
            raise InvalidInputError(f"--{extra} needs a template: a blank VM boots its ISO's installer")
        return self


class CloneVm(NewVm):
    """``vm.clone``: a new VM with a new identity from an existing VM, cold or hot."""

    kind = "vm.clone"

    source: Annotated[str, AfterValidator(_source_name)] = Field(description="The VM to clone.")
    name: Annotated[str, AfterValidator(_vm_name)] = Field(description="Name of the new VM.")
    host: str | None = Field(None, description="Host of the source VM (optional when its name is unique).")
    hot: bool = Field(False, description="Clone a running source through a temporary snapshot.")
    shutdown_source: bool = Field(
        False, description="Shut a running source down for the copy and power it back on."
    )

    @model_validator(mode="after")
    def _one_way_to_copy(self) -> Self:
        if self.hot and self.shutdown_source:
            raise InvalidInputError("--hot and --shutdown-source exclude each other")
        if self.source == self.name:
            raise InvalidInputError("the clone needs a name different from its source")
        return self
