"""What a create or clone should make: :class:`ProvisionOptions`, read from the job's spec.

Its own module so that provisioning (:mod:`ceso.operations.provision`) and the read-back after a
fault (:mod:`ceso.operations.reconcile`) share it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ceso.vm.guest import GuestSpec
from ceso.vm.specs import NewVm

__all__ = ["ProvisionOptions"]


@dataclass(frozen=True)
class ProvisionOptions:
    """What the new VM should be; None keeps the source's value."""

    name: str
    cpus: int | None = None
    memory_mb: int | None = None
    disk_bytes: int | None = None
    datastore: str | None = None
    network: str | None = None
    guest: GuestSpec = field(default_factory=GuestSpec)
    power_on: bool = True
    wait_ip: bool = False
    wait_ip_timeout_s: float = 600.0
    #: How many of the first NICs connect (None: all). The others keep their port group but are
    #: neither connected nor connected at power on, and the guest cannot connect them: a restore
    #: drill's throwaway VM must not meet the original on its networks.
    connect_nics: int | None = None

    @classmethod
    def from_spec(cls, spec: NewVm, *, name: str) -> ProvisionOptions:
        """The options of a create or clone spec, for the new VM ``name``."""
        return cls(
            name=name,
            cpus=spec.cpus,
            memory_mb=spec.memory_mb,
            disk_bytes=spec.disk_bytes,
            datastore=spec.datastore,
            network=spec.network,
            guest=spec.guest,
            power_on=not spec.no_power_on,
            wait_ip=spec.wait_ip,
            wait_ip_timeout_s=spec.wait_ip_timeout,
        )
