"""CloudInitSpec: everything ceso writes into a guest's cloud-init documents.

A spec is validated completely when it is constructed, so a job can refuse bad
input before it takes a lock or touches a host; only the 64 KiB size limit is
checked later, by :func:`ceso.cloudinit.guestinfo.build_guestinfo`, because it
depends on the encoded result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from ceso.cloudinit.network import NicConfig, build_network_config
from ceso.cloudinit.sshkeys import parse_ssh_public_key
from ceso.cloudinit.userdata import CLOUD_CONFIG_HEADER, DEFAULT_USER, build_userdata
from ceso.cloudinit.validate import validate_hostname, validate_instance_id
from ceso.errors import InvalidInputError

__all__ = ["CloudInitSpec", "check_vendordata"]


def check_vendordata(text: str) -> str:
    """Accept vendordata text as given, refusing the mistakes that would silently do nothing.

    Any user-data format is allowed (cloud-config, script, MIME). A cloud-config
    vendordata must be a YAML mapping and must not carry ``network``: the VMware
    datasource reads network config only from the metadata, so it would be ignored.
    Raises InvalidInputError.
    """
    if not text.strip():
        raise InvalidInputError("vendordata is empty; leave it out instead")
    if not text.lstrip().startswith(CLOUD_CONFIG_HEADER):
        return text
    try:
        loaded: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"vendordata is #cloud-config but not valid YAML: {exc}") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise InvalidInputError(
            f"vendordata is #cloud-config but not a YAML mapping ({type(loaded).__name__})"
        )
    if isinstance(loaded, dict) and "network" in loaded:
        raise InvalidInputError(
            "vendordata must not hold 'network': cloud-init reads network config only from the metadata; "
            "give the NIC settings instead"
        )
    return text


@dataclass(frozen=True)
class CloudInitSpec:
    """Inputs for one VM's guestinfo documents; validated and normalized on construction.

    ``hostname`` becomes ``local-hostname`` (lowercased; see
    :func:`ceso.cloudinit.validate.hostname_for_vm` to derive it from a VM name).
    ``instance_id`` None means a fresh id on every build, which is what create,
    clone and restore need. ``ssh_keys`` are literal key lines (normalized here);
    ``extra_userdata`` is cloud-config text merged into ceso's userdata;
    ``vendordata`` is passed through verbatim. Lists given for tuple fields are
    converted. Raises InvalidInputError naming the field and value.
    """

    hostname: str
    nics: tuple[NicConfig, ...] = ()
    instance_id: str | None = None
    user: str = DEFAULT_USER
    ssh_keys: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    extra_userdata: str | None = None
    vendordata: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalize once, here
        set_(self, "hostname", validate_hostname(self.hostname))
        if self.instance_id is not None:
            validate_instance_id(self.instance_id)
        for field in ("nics", "ssh_keys", "packages"):
            value = getattr(self, field)
            if isinstance(value, str):  # a lone string would iterate as characters
                raise InvalidInputError(f"{field} must be a list, not a single string")
            set_(self, field, tuple(value))
        build_network_config(self.nics)  # duplicate MACs/names, competing default gateways
        set_(
            self,
            "ssh_keys",
            tuple(parse_ssh_public_key(key, f"ssh_keys[{i}]").line for i, key in enumerate(self.ssh_keys)),
        )
        # Building the userdata once checks the user, packages and the extra text's merge.
        build_userdata(self.user, self.ssh_keys, self.packages, self.extra_userdata)
        if self.vendordata is not None:
            check_vendordata(self.vendordata)
