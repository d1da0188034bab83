"""Scheduled backups: the beat schedule from config, the task on a host's worker, one beat only."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ceso.backup.config import BackupSettings
from ceso.backup.schedule import SCHEDULED_BACKUP_TASK, beat_schedule
from ceso.errors import ConfigError
from tests.backup.bed import BackupBed, payload
from tests.conftest import CESO_BIN


def test_beat_schedule_from_config() -> None:
    settings = BackupSettings.model_validate(
        {
            "schedules": [
                {"vm": "web-01", "host": "esxi-a", "cron": "0 2 * * *", "target": "nas"},
                {
                    "vm": "db-01",
                    "host": "esxi-b",
                    "cron": "*/30 * * * 1-5",
                    "compress": "gzip",
                    "encrypt": True,
                },
            ],
            "prune_cron": "0 5 * * *",
        }
    )
    entries = beat_schedule(settings)
    assert set(entries) == {"backup esxi-a/web-01 #0", "backup esxi-b/db-01 #1", "prune"}
    web = entries["backup esxi-a/web-01 #0"]
    assert web["task"] == SCHEDULED_BACKUP_TASK and web["options"] == {"queue": "esxi.esxi-a"}
    assert web["args"][0]["target"] == "nas"
    assert web["schedule"].hour == {2} and web["schedule"].minute == {0}
    assert entries["backup esxi-b/db-01 #1"]["schedule"].day_of_week == {1, 2, 3, 4, 5}
    assert entries["prune"]["options"] == {"queue": "esxi.esxi-a"}
    for bad in ({"schedules": [{"vm": "a", "host": "h", "cron": "0 2 * *"}]}, {"prune_cron": "0 5 * * *"}):
        with pytest.raises(ConfigError):
            beat_schedule(BackupSettings.model_validate(bad))


def test_scheduled_backup_runs_on_the_hosts_worker_once(backup_bed: BackupBed, redis_url: str) -> None:
    from celery import Celery

    bed = backup_bed
    source = bed.make_vm(payload(1 << 20))
    item = {"vm": source, "host": bed.host, "cron": "0 2 * * *", "target": bed.target, "compress": "zstd"}
    sender = Celery("test-beat", broker=redis_url)
    for _ in range(2):  # a duplicate firing in the same minute makes no second job
        sender.send_task(SCHEDULED_BACKUP_TASK, args=[item], queue=f"esxi.{bed.host}")
    deadline = time.monotonic() + 60
    while True:
        jobs = [j for j in bed.run("job", "list") if j["kind"] == "backup.create"]
        if jobs and all(j["state"] == "succeeded" for j in jobs):
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(0.3)
    time.sleep(1)
    jobs = [j for j in bed.run("job", "list") if j["kind"] == "backup.create"]
    assert len(jobs) == 1 and jobs[0]["idempotency_key"].startswith(f"schedule:{bed.host}:{source}:")
    assert [b["status"] for b in bed.run("backup", "list", "--vm", source)] == ["completed"]
    sender.close()


def test_only_one_beat_runs(ceso_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "beat.yaml"
    config.write_text("backups:\n  schedules:\n    - {vm: web-01, host: esxi-a, cron: '0 2 * * *'}\n")
    env = {**os.environ, **ceso_env, "CESO_CONFIG": str(config)}
    log = tmp_path / "beat.log"
    first = subprocess.Popen(
        [str(CESO_BIN), "beat"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while "1 schedule(s): backup esxi-a/web-01 #0" not in log.read_text(errors="replace"):
            assert first.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        second = subprocess.run(
            [str(CESO_BIN), "beat"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert second.returncode == 5, second.stderr
        assert "beat:ceso is held by beat@" in second.stderr
    finally:
        first.terminate()
        first.wait(timeout=30)
