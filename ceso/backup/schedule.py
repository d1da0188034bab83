"""Scheduled backups and pruning: the Celery beat schedule built from ``backups.schedules``.

Beat only sends messages. Each scheduled backup goes to the queue of its VM's
host, whose worker turns it into an ordinary ``backup.create`` job through the
same request validation as the CLI, with an idempotency key naming the
schedule slot, so a message delivered twice (or two beats during a handover)
makes one job. The scheduled prune goes to ``prune_host``'s worker (default:
the first schedule's host) and runs :func:`ceso.backup.prune.prune` there.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ceso.constants import queue_for_host
from ceso.errors import ConfigError

if TYPE_CHECKING:
    from ceso.backup.config import BackupSettings
    from ceso.runtime import Runtime

__all__ = [
    "PRUNE_TASK",
    "SCHEDULED_BACKUP_TASK",
    "beat_schedule",
    "cron_fields",
    "submit_scheduled_backup",
]

log = logging.getLogger(__name__)

SCHEDULED_BACKUP_TASK = "ceso.scheduled_backup"
PRUNE_TASK = "ceso.scheduled_prune"
_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def cron_fields(expr: str, *, where: str) -> dict[str, str]:
    """The five fields of a cron expression as crontab() keywords; ConfigError naming ``where``."""
    parts = expr.split()
    if len(parts) != 5:
        raise ConfigError(f"{where}: cron {expr!r} must have 5 fields (minute hour day month weekday)")
    fields = dict(zip(_FIELDS, parts, strict=True))
    from celery.schedules import crontab

    try:
        crontab(**fields)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{where}: invalid cron {expr!r}: {exc}") from exc
    return fields


def beat_schedule(settings: BackupSettings) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule`` for the configured backups and prune (ConfigError if invalid)."""
    from celery.schedules import crontab

    entries: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(settings.schedules):
        fields = cron_fields(item.cron, where=f"backups.schedules[{i}].cron")
        entries[f"backup {item.host}/{item.vm} #{i}"] = {
            "task": SCHEDULED_BACKUP_TASK,
            "schedule": crontab(**fields),
            "args": (item.model_dump(),),
            "options": {"queue": queue_for_host(item.host)},
        }
    if settings.prune_cron:
        host = settings.prune_host or (settings.schedules[0].host if settings.schedules else None)
        if host is None:
            raise ConfigError("backups.prune_cron needs backups.prune_host (or at least one schedule)")
        entries["prune"] = {
            "task": PRUNE_TASK,
            "schedule": crontab(**cron_fields(settings.prune_cron, where="backups.prune_cron")),
            "options": {"queue": queue_for_host(host)},
        }
    return entries


def submit_scheduled_backup(runtime: Runtime, item: dict[str, Any], *, now: datetime) -> str:
    """Submit the ``backup.create`` job of one schedule firing at ``now``; return its id."""
    from ceso.backup.config import BackupSchedule
    from ceso.backup.requests import create_request
    from ceso.jobs.submit import submit_job

    schedule = BackupSchedule.model_validate(item)
    slot = now.replace(second=0, microsecond=0).isoformat()
    request = create_request(
        runtime,
        vm=schedule.vm,
        host=schedule.host,
        target=schedule.target,
        compression=schedule.compress,
        level=schedule.level,
        mode=None,
        encrypt=schedule.encrypt,
        idempotency_key=f"schedule:{schedule.host}:{schedule.vm}:{slot}",
    )
    from ceso.security.caller import Caller, bound
    from ceso.security.principals import operator_principal

    # Submitted (and audited) as the schedule acting for the operator: actor "beat", source "beat".
    with bound(Caller(operator_principal(runtime.settings, "beat"), source="beat")):
        job, created = submit_job(runtime, request)
    log.info(
        "scheduled backup of %s: job %s%s", schedule.vm, job.id, "" if created else " (already submitted)"
    )
    return job.id
