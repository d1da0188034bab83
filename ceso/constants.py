"""Names shared across processes: environment variables, queue and task names.

Kept in one dependency-free module so the CLI, the workers and the tests agree
on them without importing anything heavy.
"""

from __future__ import annotations

ENV_PREFIX = "CESO_"
ENV_CONFIG = "CESO_CONFIG"
ENV_DATABASE_URL = "CESO_DATABASE_URL"
ENV_REDIS_URL = "CESO_REDIS_URL"
ENV_DATA_DIR = "CESO_DATA_DIR"
ENV_SECRET_STORE = "CESO_SECRET_STORE"
ENV_HOST_PASSWORD = "CESO_HOST_PASSWORD"  # read by `host add`; never stored or logged
ENV_HOST_SSH_PASSWORD = "CESO_HOST_SSH_PASSWORD"  # `host add --ssh-user` without a key
ENV_TARGET_SECRET = "CESO_TARGET_SECRET"  # read by `target add` (SFTP password, S3 secret key)
ENV_DEBUG = "CESO_DEBUG"
ENV_AGENT_TOKEN = "CESO_AGENT_TOKEN"  # the CLI acts as this agent; never stored or logged
ENV_NO_CESOD = "CESO_NO_CESOD"  # set: the CLI does every command itself, even with a local cesod

#: The most rows ``job list`` / ``job.list`` and ``backup list`` / ``backup.list`` return at once.
JOB_LIST_MAX = 10_000
BACKUP_LIST_MAX = 100_000

#: The single Celery task every job runs through; its only argument is the job id.
RUN_JOB_TASK = "ceso.run_job"

#: Queue of one ESXi host: ``esxi.<host name>``.
QUEUE_PREFIX = "esxi."


def queue_for_host(host: str) -> str:
    """Return the Celery queue name of a registered host."""
    return f"{QUEUE_PREFIX}{host}"
