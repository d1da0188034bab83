"""The spec of ``template.import`` (see :mod:`ceso.specs`): an image brought onto a host as a template."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from ceso.errors import InvalidInputError
from ceso.hosts.names import validate_host_name
from ceso.images.source import check_source
from ceso.specs import Spec
from ceso.vm.names import validate_vm_name

__all__ = ["ImportTemplate"]


def _sha256(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise InvalidInputError("--sha256 must be 64 hexadecimal digits")
    return value.lower()


def _name(value: str) -> str:
    return validate_vm_name(value, field="template name")


class ImportTemplate(Spec):
    """``template.import``: an OVA, an OVF with its disks, or a stream-optimized VMDK as a new template VM."""

    model_config = ConfigDict(populate_by_name=True)

    kind = "template.import"

    name: Annotated[str, AfterValidator(_name)] = Field(description="Name of the new template VM.")
    host: Annotated[str, AfterValidator(validate_host_name)] = Field(description="The host to import onto.")
    from_: Annotated[str, AfterValidator(check_source)] = Field(
        alias="from",
        description="The image: an .ova, an .ovf (its disks beside it) or a stream-optimized .vmdk, as an "
        "absolute path on the worker's machine or an https:// URL.",
    )
    datastore: str | None = Field(None, description="Datastore for the template (default: the host's first).")
    network: str | None = Field(None, description="Port group for every NIC (default: the host's first).")
    sha256: Annotated[str | None, AfterValidator(lambda v: v if v is None else _sha256(v))] = Field(
        None, description="Expected SHA-256 of the SOURCE file (an OVA's manifest is checked anyway)."
    )
