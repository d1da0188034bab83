"""cloud-init documents for the VMware guestinfo datasource.

Pure functions and frozen dataclasses: nothing here talks to a host, and the
only file access is :func:`read_ssh_keys`, which resolves an operator's key file.
Imports are light (stdlib and PyYAML) so the CLI can preview documents quickly.

Typical use::

    nic = parse_nic("00:50:56:aa:bb:cc", ip="192.0.2.10/24", gateway="192.0.2.1", dns="1.1.1.1")
    spec = CloudInitSpec(hostname=hostname_for_vm("web01"), nics=(nic,), ssh_keys=tuple(read_ssh_keys(k)))
    extra_config = build_guestinfo(spec)      # {"guestinfo.metadata": ..., "guestinfo.metadata.encoding": ...}
    texts = render_documents(spec)            # {"metadata": "...", "userdata": "#cloud-config\\n..."}

Every validation failure is an :class:`~ceso.errors.InvalidInputError` naming the field and value.
"""

from __future__ import annotations

from ceso.cloudinit.encoding import (
    DOCUMENTS,
    ENCODING,
    GUESTINFO_MAX_BYTES,
    decode_guestinfo,
    decode_value,
    encode_document,
)
from ceso.cloudinit.guestinfo import build_documents, build_guestinfo, render_documents
from ceso.cloudinit.metadata import build_metadata, new_instance_id
from ceso.cloudinit.network import NicConfig, build_network_config
from ceso.cloudinit.nicargs import parse_nic
from ceso.cloudinit.spec import CloudInitSpec
from ceso.cloudinit.sshkeys import SshPublicKey, parse_ssh_public_key, read_ssh_keys
from ceso.cloudinit.userdata import DEFAULT_USER, build_userdata, merge_cloud_config, parse_extra_userdata
from ceso.cloudinit.validate import hostname_for_vm, validate_hostname, validate_mac

__all__ = [
    "DEFAULT_USER",
    "DOCUMENTS",
    "ENCODING",
    "GUESTINFO_MAX_BYTES",
    "CloudInitSpec",
    "NicConfig",
    "SshPublicKey",
    "build_documents",
    "build_guestinfo",
    "build_metadata",
    "build_network_config",
    "build_userdata",
    "decode_guestinfo",
    "decode_value",
    "encode_document",
    "hostname_for_vm",
    "merge_cloud_config",
    "new_instance_id",
    "parse_extra_userdata",
    "parse_nic",
    "parse_ssh_public_key",
    "read_ssh_keys",
    "render_documents",
    "validate_hostname",
    "validate_mac",
]
