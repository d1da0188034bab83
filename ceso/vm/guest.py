"""The guest identity options of create, clone and restore, and their cloud-init documents.

A :class:`GuestSpec` is what the operator typed (addresses as text, key lines
already read from files); it is stored in the job's params and turned into
guestinfo only in the worker, once the new VM's MAC addresses are known.
:meth:`GuestSpec.check` builds the documents with a placeholder MAC so every
mistake — a bad address, a key that does not parse, userdata over 64 KiB —
is refused before anything touches a host.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ceso.cloudinit import CloudInitSpec, build_guestinfo, hostname_for_vm, parse_nic, render_documents
from ceso.cloudinit.network import NicConfig

__all__ = ["PLACEHOLDER_MAC", "GuestSpec"]

PLACEHOLDER_MAC = "00:50:56:00:00:00"


@dataclass(frozen=True)
class GuestSpec:
    """Identity and network of a new guest. The first NIC gets the addresses; others use DHCP."""

    hostname: str | None = None
    ip: str | None = None
    gateway: str | None = None
    ip6: str | None = None
    gateway6: str | None = None
    dns: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    user: str = "ubuntu"
    ssh_keys: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    userdata: str | None = None
    vendordata: str | None = None

    def to_params(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> GuestSpec:
        return cls(**params)

    def cloudinit(self, vm_name: str, macs: list[str], *, instance_id: str | None = None) -> CloudInitSpec:
        """The cloud-init spec for a VM whose NICs have ``macs`` (in device order)."""
        nics: list[NicConfig] = []
        for i, mac in enumerate(macs):
            if i == 0:
                nics.append(
                    parse_nic(
                        mac,
                        ip=self.ip,
                        gateway=self.gateway,
                        ip6=self.ip6,
                        gateway6=self.gateway6,
                        dns=self.dns,
                        search=self.search,
                    )
                )
            else:
                nics.append(parse_nic(mac))
        return CloudInitSpec(
            hostname=hostname_for_vm(vm_name, self.hostname),
            nics=tuple(nics),
            instance_id=instance_id,
            user=self.user,
            ssh_keys=tuple(self.ssh_keys),
            packages=tuple(self.packages),
            extra_userdata=self.userdata,
            vendordata=self.vendordata,
        )

    def guestinfo(self, vm_name: str, macs: list[str], *, instance_id: str | None = None) -> dict[str, str]:
        """The ``guestinfo.*`` extraConfig keys (gzip+base64, each at most 64 KiB)."""
        return build_guestinfo(self.cloudinit(vm_name, macs, instance_id=instance_id), clear_absent=True)

    def check(self, vm_name: str, nic_count: int = 1) -> dict[str, str]:
        """Validate everything now (InvalidInputError) and return the decoded documents for a preview."""
        macs = [PLACEHOLDER_MAC[:-2] + f"{i:02x}" for i in range(max(1, nic_count))]
        # Built and encoded once: the 64 KiB limit applies to the encoded values, and the preview is
        # what they decode to.
        return render_documents(self.cloudinit(vm_name, macs))
