"""Gauges computed at scrape time from SQL and Redis (so every endpoint agrees with the record)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ceso.constants import queue_for_host
from ceso.db.models import JOB_STATES
from ceso.db.types import UTCDateTime, utcnow

__all__ = ["StateCollector"]

log = logging.getLogger(__name__)


class StateCollector(Collector):
    """``ceso_jobs_in_state{state,host}``, ``ceso_queue_depth{host}`` and, when those tables exist,
    backup and promotion gauges. A failing source is logged and skipped, never raised."""

    def __init__(self, runtime: Any, hosts: list[str] | None = None) -> None:
        self.runtime = runtime
        self.hosts = hosts
        #: When this process first saw each schedule: a schedule that never fired is overdue once
        #: a slot after this moment passed unfired.
        self._schedules_seen: dict[str, datetime] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._guard(self._jobs)
        yield from self._guard(self._queues)
        yield from self._worker_hosts()
        yield from self._guard(self._live_workers)
        yield from self._guard(self._backups)
        yield from self._guard(self._drills)
        yield from self._guard(self._schedules)
        yield from self._guard(self._promotions)
        for extra in _EXTRA_SOURCES:
            yield from self._guard(lambda fn=extra: fn(self.runtime))

    @staticmethod
    def _guard(fn: Any) -> Iterator[GaugeMetricFamily]:
        try:
            yield from fn()
        except Exception:
            log.warning("metrics source %s failed", getattr(fn, "__name__", fn), exc_info=True)

    def _jobs(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "ceso_jobs_in_state", "Jobs in SQL by state and host.", labels=["state", "host"]
        )
        # Every state of every registered host has a series (0 included), so a dashboard or an
        # alert selecting one host sees its zeros rather than no data.
        counts: dict[str, dict[str, int]] = {}
        with self.runtime.engine.connect() as conn:
            for host in conn.execute(sa.text("SELECT name FROM hosts")).scalars():
                counts[str(host)] = dict.fromkeys(JOB_STATES, 0)
            rows = conn.execute(sa.text("SELECT host, state, COUNT(*) FROM jobs GROUP BY host, state"))
            for host, state, count in rows:
                counts.setdefault(str(host), dict.fromkeys(JOB_STATES, 0))[str(state)] = int(count)
        for host, by_state in sorted(counts.items()):
            for state, count in by_state.items():
                family.add_metric([state, host], count)
        yield family

    def _backups(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily(
            "ceso_backup_sets", "Backup sets in the catalog by status.", labels=["status"]
        )
        last_good = GaugeMetricFamily(
            "ceso_last_successful_backup_timestamp_seconds",
            "When each VM's newest completed or verified backup finished (Unix time).",
            labels=["vm", "host"],
        )
        with self.runtime.engine.connect() as conn:
            for status, count in conn.execute(
                sa.text("SELECT status, COUNT(*) FROM backup_sets GROUP BY status")
            ):
                by_status.add_metric([str(status)], int(count))
            sets = sa.table(
                "backup_sets",
                sa.column("vm"),
                sa.column("host"),
                sa.column("status"),
                sa.column("completed_at", UTCDateTime()),
            )
            finished = sa.func.max(sets.c.completed_at, type_=UTCDateTime())
            rows = conn.execute(
                sa.select(sets.c.vm, sets.c.host, finished)
                .where(sets.c.status.in_(["completed", "verified"]), sets.c.completed_at.is_not(None))
                .group_by(sets.c.vm, sets.c.host)
            )
            for vm, host, when in rows:
                if when is not None:
                    last_good.add_metric([str(vm), str(host)], when.timestamp())
        yield by_status
        yield last_good

    def _drills(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Restore drills (``backup drill``) by outcome, and when each VM last passed one."""
        from ceso.backup.drills import last_passed_per_vm
        from ceso.db.backup_models import DRILL_OUTCOMES

        drills = CounterMetricFamily(
            "ceso_backup_drills",
            "Restore drills recorded in the catalog, by host and outcome.",
            labels=["host", "outcome"],
        )
        counts: dict[str, dict[str, int]] = {}
        with self.runtime.engine.connect() as conn:
            for host, status, count in conn.execute(
                sa.text("SELECT host, status, COUNT(*) FROM backup_drills GROUP BY host, status")
            ):
                counts.setdefault(str(host), dict.fromkeys(DRILL_OUTCOMES, 0))[str(status)] = int(count)
        for host, by_outcome in sorted(counts.items()):
            for outcome, count in by_outcome.items():
                drills.add_metric([host, outcome], count)
        last_passed = GaugeMetricFamily(
            "ceso_last_successful_drill_timestamp_seconds",
            "When each VM that had a restore drill last passed one (Unix time; 0: none passed yet).",
            labels=["vm", "host"],
        )
        for (host, vm), when in sorted(last_passed_per_vm(self.runtime.engine).items()):
            last_passed.add_metric([vm, host], when.timestamp() if when is not None else 0.0)
        yield drills
        yield last_passed

    def _schedules(self) -> Iterator[GaugeMetricFamily]:
        """Whether each schedule fired when due, and by when each VM it covers needs a good backup."""
        from ceso.backup.coverage import backup_deadlines
        from ceso.backup.schedule import schedule_entries
        from ceso.beat.status import schedule_status

        settings = self.runtime.settings.backups
        entries = schedule_entries(settings)
        now = utcnow()
        for entry in entries:
            self._schedules_seen.setdefault(entry.key, now)
        overdue = GaugeMetricFamily(
            "ceso_schedule_overdue",
            "1 when a slot of the schedule passed unfired for over 5 minutes (no ceso beat led).",
            labels=["schedule"],
        )
        for row in schedule_status(self.runtime, entries, now=now, known_since=self._schedules_seen):
            overdue.add_metric([row["schedule"]], 1 if row["overdue"] else 0)
        deadlines = GaugeMetricFamily(
            "ceso_backup_deadline_timestamp_seconds",
            "When a VM that a schedule covers is overdue for a good backup (Unix time).",
            labels=["vm", "host"],
        )
        due = backup_deadlines(self.runtime, settings, now=now, known_since=self._schedules_seen)
        for (vm, host), deadline in sorted(due.items()):
            deadlines.add_metric([vm, host], deadline.timestamp())
        yield overdue
        yield deadlines

    def _promotions(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("ceso_promotions_active", "Approved agent promotions not yet expired.")
        with self.runtime.engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(
                    sa.table("promotions", sa.column("state"), sa.column("expires_at", UTCDateTime()))
                )
                .where(sa.column("state") == "approved", sa.column("expires_at", UTCDateTime()) > utcnow())
            ).scalar_one()
        family.add_metric([], int(count))
        yield family

    def _live_workers(self) -> Iterator[GaugeMetricFamily]:
        """``ceso_host_live_workers{host}``: workers whose heartbeat is fresh, per registered host
        (with the queued jobs, CesoNoWorker sees a host whose jobs nobody will run)."""
        from ceso.jobs.liveness import live_workers

        with self.runtime.engine.connect() as conn:
            hosts = [str(h) for h in conn.execute(sa.text("SELECT name FROM hosts")).scalars()]
        family = GaugeMetricFamily(
            "ceso_host_live_workers", "Workers with a fresh heartbeat serving the host.", labels=["host"]
        )
        for host in hosts:
            family.add_metric([host], len(live_workers(self.runtime.redis, host)))
        yield family

    def _worker_hosts(self) -> Iterator[GaugeMetricFamily]:
        """``ceso_worker_host{host} 1`` per host a worker consumes, so that Prometheus's ``up`` of a
        worker target can be joined to host names (a worker may serve several hosts)."""
        if self.hosts is None:
            return
        family = GaugeMetricFamily(
            "ceso_worker_host", "1 for each ESXi host whose queue this worker consumes.", labels=["host"]
        )
        for host in self.hosts:
            family.add_metric([host], 1)
        yield family

    def _queues(self) -> Iterator[GaugeMetricFamily]:
        import redis

        hosts = self.hosts
        if hosts is None:
            with self.runtime.engine.connect() as conn:
                hosts = [str(h) for h in conn.execute(sa.text("SELECT name FROM hosts")).scalars()]
        family = GaugeMetricFamily(
            "ceso_queue_depth", "Job messages waiting in a host's queue.", labels=["host"]
        )
        client = redis.Redis.from_url(
            self.runtime.settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            for host in hosts:
                family.add_metric([host], int(client.llen(queue_for_host(host))))
        finally:
            client.close()
        yield family


#: Extra scrape-time sources registered by other capabilities (backups, promotions):
#: each takes the runtime and yields metric families.
_EXTRA_SOURCES: list[Any] = []


def register_source(fn: Any) -> Any:
    """Add a scrape-time source (decorator)."""
    _EXTRA_SOURCES.append(fn)
    return fn
