"""Scheduled backups: the scheduler's entries from config, the task on a host's worker, and the
scheduler's exactly-once firing recorded in real SQL (a leader and a standby: tests/chaos)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ceso.backup.config import BackupSchedule, BackupSettings
from ceso.backup.schedule import PRUNE_TASK, SCHEDULED_BACKUP_TASK, schedule_entries
from ceso.errors import ConfigError
from tests.backup.bed import BackupBed, payload
from tests.conftest import CESO_BIN, _clear_caches, unique
from tests.support.vms import make_template


def test_schedule_entries_from_config() -> None:
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
    entries = {e.key: e for e in schedule_entries(settings)}
    assert set(entries) == {"backup esxi-a/web-01 #0", "backup esxi-b/db-01 #1", "prune"}
    web = entries["backup esxi-a/web-01 #0"]
    assert (web.task, web.queue) == (SCHEDULED_BACKUP_TASK, "esxi.esxi-a")
    assert web.args[0]["target"] == "nas"
    assert web.cron.hours == {2} and web.cron.minutes == {0}
    assert entries["backup esxi-b/db-01 #1"].cron.weekdays == {1, 2, 3, 4, 5}
    assert (entries["prune"].task, entries["prune"].queue) == (PRUNE_TASK, "esxi.esxi-a")
    for bad in ({"schedules": [{"vm": "a", "host": "h", "cron": "0 2 * *"}]}, {"prune_cron": "0 5 * * *"}):
        with pytest.raises(ConfigError):
            schedule_entries(BackupSettings.model_validate(bad))


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


def test_drill_schedules_are_validated_and_named_apart() -> None:
    settings = BackupSettings.model_validate(
        {
            "schedules": [
                {"vm": "web-01", "host": "esxi-a", "cron": "0 2 * * *"},
                {"vm": "web-01", "host": "esxi-a", "cron": "0 4 * * 0", "kind": "drill", "network": "iso"},
            ]
        }
    )
    entries = {e.key: e for e in schedule_entries(settings)}
    assert set(entries) == {"backup esxi-a/web-01 #0", "drill esxi-a/web-01 #1"}
    drill = entries["drill esxi-a/web-01 #1"]
    assert (drill.task, drill.queue) == (SCHEDULED_BACKUP_TASK, "esxi.esxi-a")
    assert drill.args[0]["kind"] == "drill" and drill.args[0]["network"] == "iso"
    base = {"vm": "web-01", "host": "esxi-a", "cron": "0 4 * * 0"}
    for bad, words in (
        ({"kind": "drill", "target": "nas"}, "drop target"),
        ({"kind": "drill", "encrypt": True}, "drop encrypt"),
        ({"kind": "full", "network": "iso"}, "network belong to a schedule of kind drill"),
        ({"kind": "drill", "boot_timeout": 0}, "greater than 0"),
    ):
        with pytest.raises(ValueError, match=words):
            BackupSettings.model_validate({"schedules": [{**base, **bad}]})


def test_every_kind_of_schedule_survives_the_beats_dump() -> None:
    """The beat sends each schedule to the host's worker as ``model_dump()``; the worker validates
    it again (a drill's fields dumped as None once made every backup schedule fail there)."""
    settings = BackupSettings.model_validate(
        {
            "schedules": [
                {"vm": "web-01", "host": "esxi-a", "cron": "0 2 * * *"},
                {
                    "vm": "web-01",
                    "host": "esxi-a",
                    "cron": "0 3 * * *",
                    "kind": "incremental",
                    "full_every": 6,
                },
                {"vm": "web-01", "host": "esxi-a", "cron": "0 4 * * 0", "kind": "drill", "network": "iso"},
            ]
        }
    )
    for entry in schedule_entries(settings):
        (item,) = entry.args
        again = BackupSchedule.model_validate(item)
        assert again.model_dump() == item


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the worker's half; SQL as above
def test_scheduled_drill_runs_on_the_hosts_worker_once(backup_bed: BackupBed, redis_url: str) -> None:
    from celery import Celery

    from tests.backup.test_drill import backed_up, bootable, leftovers

    bed = backup_bed
    source, backup_id = backed_up(bed, bootable())
    item = {"vm": source, "host": bed.host, "cron": "0 4 * * 0", "kind": "drill", "boot_timeout": 30}
    sender = Celery("test-beat", broker=redis_url)
    for _ in range(2):  # a duplicate firing in the same minute makes no second drill
        sender.send_task(SCHEDULED_BACKUP_TASK, args=[item], queue=f"esxi.{bed.host}")
    deadline = time.monotonic() + 60
    while not (jobs := [j for j in bed.run("job", "list") if j["kind"] == "backup.drill"]) or any(
        j["state"] in ("queued", "running") for j in jobs
    ):
        assert time.monotonic() < deadline, jobs
        time.sleep(0.3)
    time.sleep(1)
    (job,) = [j for j in bed.run("job", "list") if j["kind"] == "backup.drill"]
    assert job["state"] == "succeeded" and job["idempotency_key"].startswith(
        f"schedule:drill:{bed.host}:{source}:"
    )
    (entry,) = bed.run("backup", "list", "--vm", source)
    assert entry["id"] == backup_id and entry["last_drill"]["status"] == "passed"
    assert leftovers(bed) == []
    sender.close()


def test_schedule_entry_of_a_tag() -> None:
    settings = BackupSettings.model_validate(
        {
            "tags": {"prod": ["web-*"]},
            "schedules": [{"tag": "prod", "host": "esxi-a", "cron": "15 3 * * *", "encrypt": True}],
        }
    )
    (entry,) = schedule_entries(settings)
    assert entry.key == "backup esxi-a/tag:prod #0"
    assert entry.args[0]["tag"] == "prod" and entry.args[0]["vm"] is None
    assert entry.queue == "esxi.esxi-a"


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
    item = {
        "tag": "nightly",
        "host": bed.host,
        "cron": "0 2 * * *",
        "target": bed.target,
        "kind": "incremental",
        "full_every": 3,
    }
    now = datetime(2026, 3, 1, 2, 0, 7, tzinfo=UTC)
    first = submit_scheduled_backup(get_runtime(), item, now=now)
    assert len(first) == 2
    assert submit_scheduled_backup(get_runtime(), item, now=now) == first  # a duplicate firing: same jobs
    for job_id in first:
        done = bed.run("job", "wait", job_id, "--timeout", "120")
        assert done["state"] == "succeeded"
        assert done["params"]["incremental"] is True and done["params"]["full_every"] == 3
        assert done["result"]["scope"] == "full"  # the first point of a chain
    jobs = {j["id"]: j for j in bed.run("job", "list") if j["kind"] == "backup.create"}
    backed_up = sorted(b["vm"] for b in bed.run("backup", "list") if b["status"] == "completed")
    assert backed_up == tagged and outsider not in backed_up
    assert {jobs[j]["idempotency_key"] for j in first} == {
        f"schedule:{bed.host}:{vm}:2026-03-01T02:00:00+00:00" for vm in tagged
    }


class _Lease:
    """Stands in for the Redis lease in scheduler ticks driven by the test (the real lease and two
    real beats are exercised in tests/chaos/test_beat_failover.py)."""

    lost = False

    def check(self) -> None:
        pass


def test_a_slot_fires_once_across_leaders_and_lost_messages_are_sent_again(ceso_env: dict[str, str]) -> None:
    from ceso.beat.fires import last_fires
    from ceso.beat.leader import GRACE_S, Scheduler
    from ceso.runtime import get_runtime

    runtime = get_runtime()
    settings = BackupSettings.model_validate(
        {"schedules": [{"vm": "web-01", "host": "esxi-a", "cron": "*/5 * * * *"}], "prune_cron": "0 5 * * *"}
    )
    entries = schedule_entries(settings)
    sent: list[tuple[str, str, int, str]] = []
    broken = {"on": False}

    def sender(name: str) -> Any:
        def send(entry: Any, slot: datetime, fire_id: int) -> None:
            if broken["on"]:
                from ceso.errors import TransientError

                raise TransientError("redis is down", code="broker_unreachable")
            sent.append((entry.key, slot.isoformat(), fire_id, name))

        return send

    first = Scheduler(runtime, entries, holder="beat@a", send=sender("a"))
    second = Scheduler(runtime, entries, holder="beat@b", send=sender("b"))
    lease = _Lease()
    # Slots in the future of the real clock: rows are stamped with the real time, so a row still
    # "sending" is old enough to be sent again at the next tick.
    now = datetime(2030, 12, 7, 10, 2, 30, tzinfo=UTC)
    first.tick(now, lease)
    first.tick(now, lease)  # the same minute again: nothing new
    second.tick(now, lease)  # a second leader during a handover: the slot is taken
    assert [(k, s, n) for k, s, _, n in sent] == [
        ("backup esxi-a/web-01 #0", "2030-12-07T10:00:00+00:00", "a")
    ]
    # The prune's 05:00 slot is hours old: beyond the grace, it is not fired late.
    assert GRACE_S < 5 * 3600
    # Redis down at the next slot: recorded as sending, sent again by whoever leads next.
    broken["on"] = True
    later = datetime(2030, 12, 7, 10, 5, 1, tzinfo=UTC)
    first.tick(later, lease)
    assert len(sent) == 1
    assert last_fires(runtime.engine)["backup esxi-a/web-01 #0"].state == "sending"
    broken["on"] = False
    second.tick(datetime(2030, 12, 7, 10, 5, 20, tzinfo=UTC), lease)
    assert [(s, n) for _, s, _, n in sent[1:]] == [("2030-12-07T10:05:00+00:00", "b")]
    fires = last_fires(runtime.engine)
    assert (
        fires["backup esxi-a/web-01 #0"].state == "sent"
        and fires["backup esxi-a/web-01 #0"].leader == "beat@a"
    )
    assert "prune" not in fires


def test_two_beats_one_leads_the_other_stands_by(ceso_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "beat.yaml"
    config.write_text("backups:\n  schedules:\n    - {vm: web-01, host: esxi-a, cron: '0 2 * * *'}\n")
    env = {**os.environ, **ceso_env, "CESO_CONFIG": str(config)}
    logs = [tmp_path / "beat1.log", tmp_path / "beat2.log"]
    beats = [
        subprocess.Popen([str(CESO_BIN), "beat"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:
        deadline = time.monotonic() + 30
        while True:
            texts = [log.read_text(errors="replace") for log in logs]
            if sum("leading: 1 schedule(s)" in t for t in texts) == 1 and any(
                "standing by" in t for t in texts
            ):
                break
            assert all(b.poll() is None for b in beats) and time.monotonic() < deadline, texts
            time.sleep(0.1)
        assert "1 schedule(s): backup esxi-a/web-01 #0" in texts[0]
        standby = texts[0] if "standing by" in texts[0] else texts[1]
        assert "standing by: beat@" in standby and "leads" in standby
        listed = subprocess.run(
            [str(CESO_BIN), "--json", "schedule", "list"], env=env, capture_output=True, text=True, check=True
        )
        (row,) = json.loads(listed.stdout)
        assert row["schedule"] == "backup esxi-a/web-01 #0" and row["last_slot"] is None
        assert row["next_slot"].endswith("T02:00:00+00:00") and row["overdue"] is False
    finally:
        for b in beats:
            b.terminate()
        for b in beats:
            assert b.wait(timeout=30) == 0
