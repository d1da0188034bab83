"""The scheduler loop: lead while holding the beat lease, stand by otherwise.

Any number of ``ceso beat`` processes may run. One holds the Redis lease ``beat:ceso`` and fires;
the others stand by and try to take the lease every few seconds, so when the leader dies its lease
expires (``locks.ttl_s``) and a standby leads within that time plus one poll.

Firing is exactly once per slot, across handovers: a slot (a schedule's cron minute) is first
claimed in SQL under a unique (schedule, slot) constraint, then its message is sent and the row
marked ``sent``. A leader that dies between the two leaves the row ``sending``; the next leader
sends it again (the worker's task is idempotent per slot). A slot is fired only while it is at
most :data:`GRACE_S` old, so a scheduler that was down for hours does not fire a burst of stale
backups on restart; ``ceso schedule list`` shows such a schedule as overdue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ceso.beat import fires
from ceso.beat.entries import ScheduleEntry
from ceso.db.types import utcnow
from ceso.errors import CesoError, LockedError

if TYPE_CHECKING:
    from ceso.runtime import Runtime

__all__ = ["BEAT_LOCK", "GRACE_S", "Scheduler"]

log = logging.getLogger(__name__)

BEAT_LOCK = "beat:ceso"
#: How late a slot may still be fired: far above a standby's takeover time (the lease TTL plus a
#: poll), far below any schedule's period that would make a late firing a surprise.
GRACE_S = 300.0
#: A ``sending`` row older than this is sent again by the leader.
RESEND_AFTER_S = 10.0

Send = Callable[[ScheduleEntry, datetime, int], None]


class Scheduler:
    """Lead or stand by until :meth:`stop`; ``send(entry, slot, fire_id)`` publishes one message."""

    def __init__(
        self,
        runtime: Runtime,
        entries: Sequence[ScheduleEntry],
        *,
        holder: str,
        send: Send,
        tick_s: float = 1.0,
        standby_poll_s: float = 5.0,
    ) -> None:
        self.runtime = runtime
        self.entries = list(entries)
        self.holder = holder
        self.send = send
        self.tick_s = tick_s
        self.standby_poll_s = standby_poll_s
        self._stop = threading.Event()
        self._last: dict[str, datetime] = {}

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Alternate between standing by and leading until stopped. Never raises for a busy lease or
        an unreachable Redis/SQL: it logs and tries again."""
        waiting_for: str | None = None
        while not self._stop.is_set():
            try:
                lease = self.runtime.locks.acquire([BEAT_LOCK], holder=self.holder, wait_s=0)
            except LockedError as exc:
                holders = ", ".join(str(h) for h in exc.details.get("holders", [])) or "another beat"
                if holders != waiting_for:
                    log.info("standing by: %s leads", holders)
                    waiting_for = holders
                self._stop.wait(self.standby_poll_s)
                continue
            except CesoError as exc:
                log.warning("standing by: cannot reach the lease: %s", exc.message)
                self._stop.wait(self.standby_poll_s)
                continue
            waiting_for = None
            with lease:
                log.info("leading: %d schedule(s)", len(self.entries))
                self._lead(lease)
            if not self._stop.is_set():
                log.warning("lost the lead (lease %s expired); standing by", BEAT_LOCK)

    def _lead(self, lease: Any) -> None:
        self._last = {}
        loaded = False
        while not self._stop.is_set() and not lease.lost:
            try:
                if not loaded:
                    self._last = {k: f.slot for k, f in fires.last_fires(self.runtime.engine).items()}
                    loaded = True
                self.tick(utcnow(), lease)
            except Exception:  # a database or broker hiccup: the next tick tries again
                log.warning("scheduler tick failed", exc_info=True)
            self._stop.wait(self.tick_s)

    def tick(self, now: datetime, lease: Any) -> None:
        """Fire every entry whose latest slot is due, new and within the grace; re-send lost ones."""
        for entry in self.entries:
            slot = entry.cron.latest(now)
            if slot is None or (now - slot).total_seconds() > GRACE_S:
                continue
            if (last := self._last.get(entry.key)) is not None and slot <= last:
                continue
            lease.check()  # never fire on a lease that another beat may hold by now
            fire_id = fires.claim_slot(self.runtime.engine, entry.key, slot, leader=self.holder)
            self._last[entry.key] = slot
            if fire_id is None:
                continue  # fired already, by a previous leader
            self._send(entry, slot, fire_id)
        by_key = {e.key: e for e in self.entries}
        for row in fires.unsent(self.runtime.engine, before=now - timedelta(seconds=RESEND_AFTER_S)):
            again = by_key.get(row.schedule)
            if again is not None and row.id is not None:
                log.info("sending %s at %s again (not known to be sent)", row.schedule, row.slot.isoformat())
                self._send(again, row.slot, row.id)

    def _send(self, entry: ScheduleEntry, slot: datetime, fire_id: int) -> None:
        try:
            self.send(entry, slot, fire_id)
        except CesoError as exc:
            log.warning("%s at %s not sent yet: %s", entry.key, slot.isoformat(), exc.message)
            return
        fires.mark_sent(self.runtime.engine, fire_id)
        log.info("fired %s at %s", entry.key, slot.isoformat())
