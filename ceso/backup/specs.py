"""The specs of ``backup.create``, ``backup.restore`` and ``backup.drill`` (see :mod:`ceso.specs`).

A backup job also stores what was resolved when it was submitted and must not change
under it: the target, codec and level a default stood for, the key id (create); the
set's id, target, path and manifest digest (restore). The request builders fill the
spec's own fields in (:meth:`pydantic.BaseModel.model_copy`) and add the rest as the
kind's :attr:`~ceso.specs.Spec.job_facts`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from ceso.errors import InvalidInputError
from ceso.specs import Spec
from ceso.vm.names import validate_vm_name
from ceso.vm.specs import GuestIdentity

__all__ = ["CreateBackup", "DrillBackup", "RestoreBackup"]


def _vm_name(name: str) -> str:
    return validate_vm_name(name)


class CreateBackup(Spec):
    """``backup.create``: one VM to a target as a set of files and a manifest."""

    kind = "backup.create"
    job_facts = ("key_id",)

    vm: Annotated[str, AfterValidator(_vm_name)] = Field(description="The VM to back up.")
    host: str | None = Field(None, description="Host of the VM (optional when its name is unique).")
    target: str | None = Field(None, description="Backup target (default: backups.default_target).")
    compress: Literal["zstd", "gzip", "none"] | None = Field(
        None, description="Compression (default: backups.compression, zstd unless configured)."
    )
    level: int | None = Field(
        None, ge=0, le=22, description="Compression level (zstd 1-22, gzip 1-9, none 0)."
    )
    hot: bool | None = Field(
        None, description="Hot (a temporary snapshot) or cold; default: hot if the VM runs, else cold."
    )
    encrypt: bool = Field(
        False, description="AES-256-GCM with the key in the secret store (made if missing)."
    )
    incremental: bool = Field(
        False,
        description="Store only what changed since the VM's last backup at the target (CBT); "
        "a full when the chain cannot be trusted (the job's result says why).",
    )
    full_every: int | None = Field(
        None, ge=1, le=10_000, description="With incremental: a full after this many incrementals in a chain."
    )

    @property
    def mode(self) -> str | None:
        """``hot``, ``cold`` or None (decided by the VM's power state when the job runs)."""
        return None if self.hot is None else ("hot" if self.hot else "cold")


class RestoreBackup(GuestIdentity):
    """``backup.restore``: a backup set as a new VM (``as``), or over the original VM (``in_place``)."""

    model_config = ConfigDict(populate_by_name=True)

    kind = "backup.restore"
    job_facts = ("target", "path", "manifest_sha256")

    backup_id: str = Field(description="The backup's id (or a unique prefix).")
    as_: str | None = Field(None, alias="as", description="Name of the new VM.")
    in_place: bool = Field(
        False, description="Overwrite the disks of the original, powered-off VM (keeps its identity; admin)."
    )
    host: str | None = Field(None, description="Host to restore to (default: the VM's original host).")
    datastore: str | None = Field(
        None, description="Datastore for the new VM (default: the original's, if present)."
    )
    network: str | None = Field(None, description="Port group of the first NIC (default: the original's).")
    no_power_on: bool = Field(False, description="Leave the new VM powered off.")

    @model_validator(mode="after")
    def _new_or_in_place(self) -> Self:
        if self.in_place:
            fields = type(self).model_fields
            kept = {"backup_id", "in_place", "no_power_on"}  # the VM keeps everything else of its own
            if any(getattr(self, key) != fields[key].default for key in fields if key not in kept):
                raise InvalidInputError(
                    "--in-place keeps the VM's name, host, disks and identity: drop --as and the other options"
                )
        elif self.as_ is None:
            raise InvalidInputError(
                "give the new VM's name with --as NAME, or restore over the original with --in-place"
            )
        else:
            validate_vm_name(self.as_)
        return self


class DrillBackup(Spec):
    """``backup.drill``: restore a point as a throwaway VM, boot it until VMware Tools beat, record the
    outcome on the backup, and remove the VM whatever happened."""

    kind = "backup.drill"
    job_facts = ("target", "path", "manifest_sha256")

    backup_id: str | None = Field(
        None, description="The backup's id (or a unique prefix); or --vm for the VM's latest point."
    )
    vm: Annotated[str, AfterValidator(_vm_name)] | None = Field(
        None, description="Drill the latest completed backup of this VM (instead of BACKUP_ID)."
    )
    host: str | None = Field(
        None,
        description="Host to restore to (default: the VM's original host); with --vm, the VM of that host.",
    )
    network: str | None = Field(
        None,
        description="Connect the first NIC to this (isolated) port group and wait for a guest IP too "
        "(default: every NIC disconnected).",
    )
    boot_timeout: float = Field(
        600.0,
        gt=0,
        le=86400,
        description="Seconds from power on to VMware Tools' heartbeat (and, with --network, a guest IP).",
    )

    @model_validator(mode="after")
    def _one_point(self) -> Self:
        if self.backup_id is None and self.vm is None:
            raise InvalidInputError("give the backup's id, or --vm VM for its latest completed backup")
        return self
