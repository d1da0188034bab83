"""Scheduled backups: the beat schedule from config, the task on a host's worker, one beat only."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ceso.backup.config import BackupSettings
from ceso.backup.schedule import SCHEDULED_BACKUP_TASK, beat_schedule
from ceso.errors import ConfigError
from tests.backup.bed import BackupBed, payload
from tests.conftest import CESO_BIN, _clear_caches, unique
from tests.support.vms import make_template


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


def test_beat_schedule_of_a_tag() -> None:
    settings = BackupSettings.model_validate(
        {
            "tags": {"prod": ["web-*"]},
            "schedules": [{"tag": "prod", "host": "esxi-a", "cron": "15 3 * * *", "encrypt": True}],
        }
    )
    (name,) = beat_schedule(settings)
    assert name == "backup esxi-a/tag:prod #0"
    entry = beat_schedule(settings)[name]
    assert entry["args"][0]["tag"] == "prod" and entry["args"][0]["vm"] is None
    assert entry["options"] == {"queue": "esxi.esxi-a"}


def test_scheduled_backup_of_a_tag_backs_up_each_matching_vm_once(
    backup_bed: BackupBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ceso.backup.schedule import submit_scheduled_backup
    from ceso.runtime import get_runtime

    bed = backup_bed
    group = unique("grp")
    tagged = [f"{group}-a", f"{group}-b"]
    for vm in tagged:
        make_template(bed.si, bed.datastore_dir, vm, payload(1 << 20))
    outsider = bed.make_vm(payload(1 << 20))
    monkeypatch.setenv("CESO_BACKUPS__TAGS", json.dumps({"nightly": [f"{group}-*"]}))
    _clear_caches()
    item = {"tag": "nightly", "host": bed.host, "cron": "0 2 * * *", "target": bed.target}
    now = datetime(2026, 3, 1, 2, 0, 7, tzinfo=UTC)
    first = submit_scheduled_backup(get_runtime(), item, now=now)
    assert len(first) == 2
    assert submit_scheduled_backup(get_runtime(), item, now=now) == first  # a duplicate firing: same jobs
    for job_id in first:
        assert bed.run("job", "wait", job_id, "--timeout", "120")["state"] == "succeeded"
    jobs = {j["id"]: j for j in bed.run("job", "list") if j["kind"] == "backup.create"}
    backed_up = sorted(b["vm"] for b in bed.run("backup", "list") if b["status"] == "completed")
    assert backed_up == tagged and outsider not in backed_up
    assert {jobs[j]["idempotency_key"] for j in first} == {
        f"schedule:{bed.host}:{vm}:2026-03-01T02:00:00+00:00" for vm in tagged
    }


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
