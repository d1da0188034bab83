"""The metadata document: instance-id, local-hostname and the netplan v2 network.

cloud-init applies network configuration only when it sees a new instance-id
(first boot of an instance). A clone or a restore that kept its source's id
would boot with the source's addresses, so every build that does not receive an
explicit id draws a fresh one. The network goes here, under ``network``, because
the VMware datasource reads it nowhere else: a ``network`` key in vendordata is
ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ceso.cloudinit.network import NicConfig, build_network_config
from ceso.cloudinit.validate import validate_hostname, validate_instance_id

__all__ = ["build_metadata", "new_instance_id"]


def new_instance_id() -> str:
    """Return a fresh instance id, ``i-`` and 32 hex digits (uuid4)."""
    return f"i-{uuid.uuid4().hex}"


def build_metadata(
    hostname: str, nics: Sequence[NicConfig], instance_id: str | None = None
) -> dict[str, Any]:
    """Return the metadata mapping (serialize it with :func:`ceso.cloudinit.userdata.dump_yaml`).

    ``instance_id`` None draws :func:`new_instance_id`; callers pass one only to
    reproduce an exact document (tests, previews of a stored job). With no NICs the
    ``network`` key is left out and cloud-init falls back to DHCP on the first NIC.
    Raises InvalidInputError for a bad hostname, instance id or NIC set.
    """
    document: dict[str, Any] = {
        "instance-id": validate_instance_id(instance_id) if instance_id is not None else new_instance_id(),
        "local-hostname": validate_hostname(hostname),
    }
    if nics:
        document["network"] = build_network_config(nics)
    return document
