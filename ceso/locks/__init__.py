"""Locks for jobs: per-VM and per-datastore leases, and per-backup-target semaphores, on Redis.

A job takes its locks before its first step and keeps them with a heartbeat::

    locks = LockManager(redis_client, ttl_s=30)
    with locks.hold([vm_lock_name(host, vm)], holder=job_id, wait_s=60) as lease:
        for step in steps:
            lease.check()           # LockLostError: stop here and clean up
            write_sql(..., fence=lease.tokens[name])

* Two jobs never hold the same lock; jobs on different VMs run in parallel.
* Several locks are taken all or none, in one sorted order, so jobs cannot deadlock.
  Take a job's exclusive locks before any semaphore slot, for the same reason.
* A lease lives ``ttl_s`` past its last renewal; a crashed worker's locks free
  themselves. A job that loses a lock learns it from :attr:`Lease.lost` /
  :meth:`Lease.check` at its next step.
* Fencing tokens grow with every acquisition of a name: a SQL write guarded by
  the token is rejected once a newer holder wrote, even if the old job has not
  noticed its loss yet.

Errors: LockedError (held by another holder), LockLostError (lease lost),
TransientError (Redis unreachable), OperationError (other Redis failures),
InvalidInputError (bad names or settings).
"""

from __future__ import annotations

from ceso.locks.lease import Grant, Lease, LockLostError
from ceso.locks.manager import LockManager
from ceso.locks.names import datastore_lock_name, escape_component, target_lock_name, vm_lock_name

__all__ = [
    "Grant",
    "Lease",
    "LockLostError",
    "LockManager",
    "datastore_lock_name",
    "escape_component",
    "target_lock_name",
    "vm_lock_name",
]
