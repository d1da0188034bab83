"""Every metric ceso exports, in one place (names follow Prometheus conventions).

Labels are bounded sets: job kinds, host names, outcomes, vSphere method and
fault names, agent names and modes. Never a job id, VM name in a counter, or
free text. (The per-VM last-backup gauge is computed at scrape time from SQL.)
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "AGENT_OPERATIONS",
    "BACKUP_BYTES",
    "CESOD_REFUSED",
    "ESXI_ERRORS",
    "ESXI_REQUEST_DURATION",
    "ESXI_SESSIONS",
    "JOBS",
    "JOB_DURATION",
    "JOB_QUEUE_WAIT",
    "LOCK_WAIT",
]

# Bucket edges on the success criteria: create <= 90 s, clone <= 300 s, backup of 100 GB < 600 s.
JOB_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 90, 120, 180, 300, 450, 600, 900, 1800, 3600)

JOB_DURATION = Histogram(
    "ceso_job_duration_seconds",
    "Wall time of a job from claim to outcome.",
    ["kind", "host", "outcome"],
    buckets=JOB_BUCKETS,
)
JOBS = Counter("ceso_jobs_total", "Jobs that reached an outcome.", ["kind", "host", "outcome"])
JOB_QUEUE_WAIT = Histogram(
    "ceso_job_queue_wait_seconds",
    "Time from submit to claim.",
    ["kind", "host"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
LOCK_WAIT = Histogram(
    "ceso_lock_wait_seconds",
    "Time a job waited for its VM and datastore locks.",
    ["kind", "host"],
    buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600),
)
BACKUP_BYTES = Counter(
    "ceso_backup_bytes_total", "Bytes moved by backups and restores.", ["host", "target", "stage"]
)
ESXI_REQUEST_DURATION = Histogram(
    "ceso_esxi_request_duration_seconds",
    "Duration of one vSphere API request.",
    ["host", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ESXI_ERRORS = Counter(
    "ceso_esxi_errors_total", "vSphere API requests that failed, by fault.", ["host", "method", "fault"]
)
ESXI_SESSIONS = Counter(
    "ceso_esxi_logins_total", "vSphere logins by kind (login, relogin).", ["host", "event"]
)
ESXI_POOL = Gauge(
    "ceso_esxi_sessions", "Open pooled vSphere sessions.", ["host"], multiprocess_mode="livesum"
)
AGENT_OPERATIONS = Counter(
    "ceso_agent_operations_total",
    "Operations attempted by agents.",
    ["agent", "mode", "operation", "outcome"],
)
CESOD_REFUSED = Counter(
    "ceso_cesod_refused_total",
    "Requests cesod refused before running them: unauthenticated, address_not_allowed, "
    "too_many_connections, request_deadline, rate_limited_address, rate_limited_token.",
    ["reason"],
)
