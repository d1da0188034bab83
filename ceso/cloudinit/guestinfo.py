"""From a CloudInitSpec to extraConfig keys, and back to texts for previews.

:func:`build_guestinfo` is what create, clone and restore write to a VM's
extraConfig; :func:`render_documents` is what ``ceso cloudinit render`` and
``--dry-run`` print. Rendering goes through the real encoder and decoder, so a
preview that succeeds proves the values fit and decode.
"""

from __future__ import annotations

from ceso.cloudinit.encoding import ENCODING, decode_guestinfo, encode_document, guestinfo_key
from ceso.cloudinit.metadata import build_metadata
from ceso.cloudinit.spec import CloudInitSpec
from ceso.cloudinit.userdata import build_userdata, dump_yaml

__all__ = ["build_documents", "build_guestinfo", "render_documents"]


def build_documents(spec: CloudInitSpec) -> dict[str, str]:
    """Return the plain document texts ``{"metadata": ..., "userdata": ..., ["vendordata": ...]}``.

    The metadata is YAML (cloud-init accepts YAML or JSON there). A spec without
    an instance id gets a fresh one on every call.
    """
    documents = {
        "metadata": dump_yaml(build_metadata(spec.hostname, spec.nics, spec.instance_id)),
        "userdata": build_userdata(spec.user, spec.ssh_keys, spec.packages, spec.extra_userdata),
    }
    if spec.vendordata is not None:
        documents["vendordata"] = spec.vendordata
    return documents


def build_guestinfo(spec: CloudInitSpec, *, clear_absent: bool = False) -> dict[str, str]:
    """Return the extraConfig entries for ``spec``: each document and its ``.encoding``.

    Values are gzip+base64. With ``clear_absent`` the vendordata keys are set to
    ``""`` when the spec has none: on ESXi an empty value deletes an extraConfig
    key, so a clone does not inherit its source's vendordata (cloud-init treats
    an empty value as absent either way). Raises InvalidInputError when an
    encoded value exceeds 64 KiB, naming the document and its size; nothing is
    returned then, so nothing partial reaches a host.
    """
    entries: dict[str, str] = {}
    for document, text in build_documents(spec).items():
        key = guestinfo_key(document)
        entries[key] = encode_document(document, text)
        entries[f"{key}.encoding"] = ENCODING
    if clear_absent and spec.vendordata is None:
        key = guestinfo_key("vendordata")
        entries[key] = ""
        entries[f"{key}.encoding"] = ""
    return entries


def render_documents(spec: CloudInitSpec) -> dict[str, str]:
    """Return the decoded texts of what :func:`build_guestinfo` would write (for previews).

    Same keys as :func:`build_documents`. Raises what build_guestinfo raises.
    """
    return decode_guestinfo(build_guestinfo(spec))
