"""The ``backups:`` section of ceso's configuration (see configs/ceso.example.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["BackupSchedule", "BackupSettings", "RetentionPolicy"]


class RetentionPolicy(BaseModel):
    """Grandfather-father-son: how many backups of a VM to keep (0 = none by that rule)."""

    keep_last: int = Field(3, ge=0, description="The newest N backups.")
    keep_daily: int = Field(
        7, ge=0, description="The newest backup of each of the last N days that have one."
    )
    keep_weekly: int = Field(4, ge=0, description="The newest backup of each of the last N ISO weeks.")
    keep_monthly: int = Field(6, ge=0, description="The newest backup of each of the last N months.")


class BackupSchedule(BaseModel):
    """A backup that Celery beat submits on a cron schedule (UTC)."""

    vm: str
    host: str = Field(description="The VM's registered host; its worker submits the job.")
    cron: str = Field(description="Five cron fields in UTC: minute hour day-of-month month day-of-week.")
    target: str | None = Field(None, description="Default: backups.default_target.")
    compress: Literal["zstd", "gzip", "none"] | None = None
    level: int | None = None
    encrypt: bool = False


class BackupSettings(BaseModel):
    """Backups: default target and codec, concurrency per target, retention."""

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
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)  # type: ignore[arg-type]
    retention_per_vm: dict[str, RetentionPolicy] = Field(
        default_factory=dict, description="Retention overriding the default for the named VMs."
    )
    schedules: list[BackupSchedule] = Field(default_factory=list, description="Backups run by `ceso beat`.")
    prune_cron: str | None = Field(None, description="When `ceso beat` runs `backup prune` (cron, UTC).")
    prune_host: str | None = Field(
        None, description="Whose worker runs the scheduled prune (default: the first schedule's host)."
    )
