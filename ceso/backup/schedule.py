"""Scheduled backups and pruning: the scheduler's entries built from ``backups.schedules``.

``ceso beat`` (:mod:`ceso.beat`) only sends messages. Each scheduled backup goes to the queue of its VM's
host, whose worker turns it into an ordinary ``backup.create`` job through the
same request validation as the CLI, with an idempotency key naming the
schedule slot, so a message delivered twice (or two beats during a handover)
makes one job. A schedule of a tag (``tag:`` instead of ``vm:``) is resolved
when it fires, not when beat starts: the worker lists the VMs registered on its
host and submits one job for each VM the tag matches, so a VM created later is
backed up without restarting beat. The scheduled prune goes to ``prune_host``'s
worker (default: the first schedule's host) and runs
:func:`ceso.backup.prune.prune` there.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ceso.constants import queue_for_host
from ceso.errors import ConfigError

if TYPE_CHECKING:
    from ceso.backup.config import BackupSchedule, BackupSettings
    from ceso.beat.entries import ScheduleEntry
    from ceso.runtime import Runtime

__all__ = [
    "PRUNE_TASK",
    "SCHEDULED_BACKUP_TASK",
    "schedule_entries",
    "schedule_key",
    "submit_scheduled_backup",
]

log = logging.getLogger(__name__)

SCHEDULED_BACKUP_TASK = "ceso.scheduled_backup"
PRUNE_TASK = "ceso.scheduled_prune"


def schedule_key(item: BackupSchedule, index: int) -> str:
    """The schedule's name in `schedule list`, the metrics and the fired slots: ``backup
    esxi-a/web-01 #0``, ``drill esxi-a/tag:prod #2``."""
    subject = item.vm if item.vm is not None else f"tag:{item.tag}"
    return f"{'drill' if item.kind == 'drill' else 'backup'} {item.host}/{subject} #{index}"


def schedule_entries(settings: BackupSettings) -> list[ScheduleEntry]:
    """The scheduler's entries for the configured backups and prune (ConfigError if invalid)."""
    from ceso.beat.cron import Cron
    from ceso.beat.entries import ScheduleEntry

    entries: list[ScheduleEntry] = []
    for i, item in enumerate(settings.schedules):
        entries.append(
            ScheduleEntry(
                key=schedule_key(item, i),
                cron=Cron.parse(item.cron, where=f"backups.schedules[{i}].cron"),
                task=SCHEDULED_BACKUP_TASK,
                queue=queue_for_host(item.host),
                args=(item.model_dump(),),
            )
        )
    if settings.prune_cron:
        host = settings.prune_host or (settings.schedules[0].host if settings.schedules else None)
        if host is None:
            raise ConfigError("backups.prune_cron needs backups.prune_host (or at least one schedule)")
        entries.append(
            ScheduleEntry(
                key="prune",
                cron=Cron.parse(settings.prune_cron, where="backups.prune_cron"),
                task=PRUNE_TASK,
                queue=queue_for_host(host),
            )
        )
    return entries


def submit_scheduled_backup(runtime: Runtime, item: dict[str, Any], *, now: datetime) -> list[str]:
    """Submit the ``backup.create`` (``kind: drill``: ``backup.drill``) jobs of one schedule firing
    at ``now``; return their ids.

    A schedule of a VM makes one job; a schedule of a tag makes one job for each
    VM on the schedule's host that the tag matches (templates excluded), in name
    order. A VM that cannot be submitted (say, its name is refused) is logged and
    skipped; the others still run, and the first such error is raised at the end
    so the task shows as failed.
    """
    from ceso.backup.config import BackupSchedule

    schedule = BackupSchedule.model_validate(item)
    vms = [schedule.vm] if schedule.vm is not None else _tagged_vms(runtime, schedule)
    ids: list[str] = []
    first_error: Exception | None = None
    for vm in vms:
        try:
            ids.append(_submit_one(runtime, schedule, vm, now))
        except Exception as exc:  # one bad VM must not cost the rest of the tag their backups
            if schedule.vm is not None:
                raise
            log.error("scheduled backup of %s (tag %s) not submitted: %s", vm, schedule.tag, exc)
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return ids


def _tagged_vms(runtime: Runtime, schedule: BackupSchedule) -> list[str]:
    from ceso.backup.tags import vms_with_tag
    from ceso.inventory import list_all_vms

    assert schedule.tag is not None
    patterns = runtime.settings.backups.tags.get(schedule.tag)
    if patterns is None:  # the worker's config differs from beat's
        raise ConfigError(f"schedule of tag {schedule.tag!r}: no such tag in backups.tags of this worker")
    from ceso.backup.drills import DRILL_PREFIX

    # A drill's throwaway VM is never backed up or drilled, whatever the tag's patterns say.
    names = [
        v.name
        for v in list_all_vms(runtime, schedule.host)
        if not v.template and not v.name.startswith(DRILL_PREFIX)
    ]
    matched = vms_with_tag(names, patterns)
    if not matched:
        log.warning("scheduled backup of tag %s: no VM on %s matches it", schedule.tag, schedule.host)
    return matched


def _submit_one(runtime: Runtime, schedule: BackupSchedule, vm: str, now: datetime) -> str:
    from ceso.backup.requests import create_request, drill_request
    from ceso.backup.specs import CreateBackup, DrillBackup
    from ceso.jobs.request import JobRequest
    from ceso.jobs.submit import submit_job

    slot = now.replace(second=0, microsecond=0).isoformat()
    request: JobRequest
    if schedule.kind == "drill":
        drill = DrillBackup.parse(
            {
                "vm": vm,
                "host": schedule.host,
                "network": schedule.network,
                **({"boot_timeout": schedule.boot_timeout} if schedule.boot_timeout else {}),
            }
        )
        key = f"schedule:drill:{schedule.host}:{vm}:{slot}"  # a backup of the same slot has its own
        request = drill_request(runtime, drill, idempotency_key=key)
    else:
        spec = CreateBackup.parse(
            {
                "vm": vm,
                "host": schedule.host,
                "target": schedule.target,
                "compress": schedule.compress,
                "level": schedule.level,
                "encrypt": schedule.encrypt,
                "incremental": schedule.kind == "incremental",
                "full_every": schedule.full_every,
            }
        )
        request = create_request(runtime, spec, idempotency_key=f"schedule:{schedule.host}:{vm}:{slot}")
    from ceso.security.caller import Caller, bound
    from ceso.security.principals import operator_principal

    # Submitted (and audited) as the schedule acting for the operator: actor "beat", source "beat".
    with bound(Caller(operator_principal(runtime.settings, "beat"), source="beat")):
        job, created = submit_job(runtime, request)
    what = "drill" if schedule.kind == "drill" else "backup"
    log.info("scheduled %s of %s: job %s%s", what, vm, job.id, "" if created else " (already submitted)")
    return job.id
