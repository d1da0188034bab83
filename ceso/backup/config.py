"""The ``backups:`` section of ceso's configuration (see configs/ceso.example.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ceso.backup.tags import check_pattern, check_tag_name

__all__ = ["BackupSchedule", "BackupSettings", "RetentionPolicy"]

TagName = Annotated[str, AfterValidator(check_tag_name)]
VmPattern = Annotated[str, AfterValidator(check_pattern)]


class RetentionPolicy(BaseModel):
    """Grandfather-father-son: how many backups of a VM to keep (0 = none by that rule)."""

    model_config = ConfigDict(extra="forbid")  # a typo in the YAML is an error, never ignored

    keep_last: int = Field(3, ge=0, description="The newest N backups.")
    keep_daily: int = Field(
        7, ge=0, description="The newest backup of each of the last N days that have one."
    )
    keep_weekly: int = Field(4, ge=0, description="The newest backup of each of the last N ISO weeks.")
    keep_monthly: int = Field(6, ge=0, description="The newest backup of each of the last N months.")


class BackupSchedule(BaseModel):
    """A backup (or, with `kind: drill`, a restore drill of the newest backup) that `ceso beat`
    submits on a cron schedule (UTC): of one VM, or of every VM of a tag."""

    model_config = ConfigDict(extra="forbid")  # a typo in the YAML is an error, never ignored

    vm: str | None = Field(None, description="The VM to back up or drill (give `vm` or `tag`).")
    tag: str | None = Field(
        None, description="Back up (or drill) every VM of this tag (backups.tags) registered on `host`."
    )
    host: str = Field(description="The VMs' registered host; its worker submits the jobs.")
    cron: str = Field(description="Five cron fields in UTC: minute hour day-of-month month day-of-week.")
    target: str | None = Field(None, description="Default: backups.default_target.")
    compress: Literal["zstd", "gzip", "none"] | None = None
    level: int | None = None
    encrypt: bool = False
    kind: Literal["full", "incremental", "drill"] = Field(
        "full",
        description="`incremental`: store only what changed since the last backup (CBT); `drill`: "
        "a restore drill of each VM's newest backup (`backup drill --vm`), no backup.",
    )
    full_every: int | None = Field(
        None, ge=1, description="With kind incremental: a full after this many incrementals."
    )
    network: str | None = Field(
        None, description="With kind drill: the isolated port group of `backup drill --network`."
    )
    boot_timeout: float | None = Field(
        None, gt=0, le=86400, description="With kind drill: `backup drill --boot-timeout` (default 600)."
    )

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if (self.vm is None) == (self.tag is None):
            raise ValueError("a schedule names exactly one of `vm` and `tag`")
        backup_only = ("target", "compress", "level", "encrypt", "full_every")
        # Given: set to something other than its default. The beat sends a schedule to the worker
        # as a full dump (every field, defaults included), which must validate again as it did.
        fields = type(self).model_fields
        given = {f for f in self.model_fields_set if getattr(self, f) != fields[f].default}
        if self.kind == "drill" and (wrong := [f for f in backup_only if f in given]):
            raise ValueError(f"a schedule of kind drill backs nothing up: drop {', '.join(wrong)}")
        if self.kind != "drill" and (wrong := [f for f in ("network", "boot_timeout") if f in given]):
            raise ValueError(f"{', '.join(wrong)} belong to a schedule of kind drill")
        return self


def _unknown_tags(used: list[tuple[str, str]], info: ValidationInfo) -> None:
    """ValueError naming the first tag of ``used`` (where, tag) that ``backups.tags`` does not define.

    ``where`` prefixes the message; the configuration error already names the field's key.
    """
    known = info.data.get("tags")
    if known is None:  # `tags` itself failed validation; that error is the one reported
        return
    for where, tag in used:
        if tag not in known:
            defined = ", ".join(sorted(known)) or "none"
            raise ValueError(f"{where}unknown tag {tag!r} (define it under backups.tags; defined: {defined})")


class BackupSettings(BaseModel):
    """Backups: default target and codec, concurrency per target, tags, retention, schedules."""

    model_config = ConfigDict(extra="forbid")  # a typo in the YAML is an error, never ignored

    default_target: str | None = Field(None, description="Target of `backup create` without --target.")
    compression: Literal["zstd", "gzip", "none"] = Field("zstd", description="Default compression.")
    level: int | None = Field(None, description="Default compression level (None: the codec's default).")
    zstd_threads: int = Field(
        -1,
        ge=-1,
        le=64,
        description="zstd worker threads beside the streaming threads (0: none, -1: one per core).",
    )
    target_concurrency: int = Field(2, ge=1, le=64, description="Backups writing to one target at once.")
    shutdown_timeout_s: float = Field(
        300.0, gt=0, description="Guest shutdown wait of --cold before power off."
    )
    # Declared before the fields that refer to tags: their validators read the validated tags.
    tags: dict[TagName, Annotated[list[VmPattern], Field(min_length=1)]] = Field(
        default_factory=dict,
        description="ceso's VM tags: tag name -> VM name globs (`prod: [web-*, db-1]`); see docs/backups.md.",
    )
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)  # type: ignore[arg-type]
    retention_per_vm: dict[str, RetentionPolicy] = Field(
        default_factory=dict, description="Retention of the named VMs; wins over any tag policy."
    )
    retention_per_tag: dict[str, RetentionPolicy] = Field(
        default_factory=dict,
        description="Retention of the VMs of a tag; a VM with several: the largest of each keep_*.",
    )
    schedules: list[BackupSchedule] = Field(default_factory=list, description="Backups run by `ceso beat`.")
    prune_cron: str | None = Field(None, description="When `ceso beat` runs `backup prune` (cron, UTC).")
    prune_host: str | None = Field(
        None, description="Whose worker runs the scheduled prune (default: the first schedule's host)."
    )

    @field_validator("retention_per_tag")
    @classmethod
    def _policy_tags_exist(
        cls, value: dict[str, RetentionPolicy], info: ValidationInfo
    ) -> dict[str, RetentionPolicy]:
        _unknown_tags([("", tag) for tag in value], info)
        return value

    @field_validator("schedules")
    @classmethod
    def _schedule_tags_exist(cls, value: list[BackupSchedule], info: ValidationInfo) -> list[BackupSchedule]:
        _unknown_tags([(f"item {i}: ", s.tag) for i, s in enumerate(value) if s.tag is not None], info)
        return value
