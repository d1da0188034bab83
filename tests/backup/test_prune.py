"""``backup prune`` over a real catalog (SQLite and PostgreSQL) and a local target, on a synthetic
calendar: policies by tag and by VM, their precedence, the last verified backup, ``--dry-run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from ceso.db.backup_models import BackupSet
from tests.backup.test_retention import daily
from tests.conftest import Cli, _clear_caches

#: Tags and policies: web-* and db-1 are prod; db-1 is also db; web-vip has its own policy.
CONFIG = {
    "TAGS": {"prod": ["web-*", "db-1"], "db": ["db-[0-9]"]},
    "RETENTION_PER_TAG": {
        "prod": {"keep_last": 2, "keep_daily": 0, "keep_weekly": 2, "keep_monthly": 2},
        "db": {"keep_last": 5, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0},
    },
    "RETENTION_PER_VM": {"web-vip": {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}},
    "RETENTION": {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0},
}
#: The verified backup of each VM (the prune anchor); "none" has no verified backup.
VERIFIED = {"web-01": "d040", "db-1": "d040", "web-vip": "d040", "misc": "d010", "none": None}


def _catalog(store: Path, target: str) -> None:
    """45 days of backups of each VM (see ``daily``), with a file for each at the target."""
    from ceso.runtime import get_runtime

    with Session(get_runtime().engine) as session:
        for vm, verified in VERIFIED.items():
            for c in daily(45):
                ident = f"{vm}-{c.id}"
                (store / vm / ident).mkdir(parents=True)
                (store / vm / ident / "manifest.json").write_text("{}")
                session.add(
                    BackupSet(
                        id=ident,
                        vm=vm,
                        host="esxi-a",
                        target=target,
                        path=f"{vm}/{ident}",
                        status="verified" if c.id == verified else "completed",
                        kind="cold",
                        compression="zstd",
                        created_at=c.created_at,
                    )
                )
        session.commit()


def _state(store: Path) -> tuple[list[tuple[str, str, str | None]], list[str]]:
    from ceso.runtime import get_runtime

    with Session(get_runtime().engine) as session:
        rows = sorted((r.id, r.status, r.retention_class) for r in session.exec(select(BackupSet)).all())
    return rows, sorted(str(p.relative_to(store)) for p in store.rglob("*"))


def _run(cli: Cli, *args: str) -> Any:
    result = cli("--json", *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json()


@pytest.fixture
def catalog(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in CONFIG.items():
        monkeypatch.setenv(f"CESO_BACKUPS__{key}", json.dumps(value))
    _clear_caches()
    store = tmp_path / "store"
    store.mkdir()
    _run(cli, "target", "add", "nas", "--type", "local", "--path", str(store))
    _catalog(store, "nas")
    return store


def test_prune_by_tag_and_vm_policy_keeps_the_right_sets(cli: Cli, catalog: Path) -> None:
    store = catalog
    before = _state(store)
    plan = _run(cli, "--dry-run", "backup", "prune")
    assert plan["dry_run"] is True
    assert _state(store) == before  # a dry run changes nothing: rows, classes, files

    sources = {vm: p["source"] for vm, p in plan["policies"].items()}
    assert sources == {
        "web-01": "tag:prod",
        "db-1": "tag:db+prod",  # the largest of each rule: keep_last 5 (db), weekly/monthly 2 (prod)
        "web-vip": "vm",  # its own policy wins over the prod tag
        "misc": "default",
        "none": "default",
    }
    assert plan["policies"]["db-1"]["keep_last"] == 5 and plan["policies"]["db-1"]["keep_weekly"] == 2
    survivors: dict[str, set[str]] = {}
    for entry in plan["keep"]:
        survivors.setdefault(entry["vm"], set()).add(entry["id"].removeprefix(entry["vm"] + "-"))
    # prod on 2026-01-01..02-14: last 2, the newest of the week before and of January, the
    # verified d040, and what is newer than d040.
    assert survivors["web-01"] == {"d030", "d038", "d040", "d041", "d042", "d043", "d044"}
    # db-1: also keep_last 5 (d040..d044).
    assert survivors["db-1"] == {"d030", "d038", "d040", "d041", "d042", "d043", "d044"}
    # web-vip keeps its last one only, the verified d040 and everything newer.
    assert survivors["web-vip"] == {"d040", "d041", "d042", "d043", "d044"}
    # misc: the only verified backup is old (d010); it is never deleted, nor anything newer.
    assert survivors["misc"] == {c.id for c in daily(45) if c.id >= "d010"}
    # No verified backup: nothing is pruned.
    assert survivors["none"] == {c.id for c in daily(45)}
    assert {e["policy"] for e in plan["expire"] if e["vm"] == "web-vip"} == {"vm"}

    done = _run(cli, "backup", "prune")
    assert sorted(e["id"] for e in done["expire"]) == sorted(e["id"] for e in plan["expire"])
    rows, files = _state(store)
    status = {ident: s for ident, s, _ in rows}
    for entry in plan["expire"]:
        assert status[entry["id"]] == "expired"
        assert f"{entry['vm']}/{entry['id']}" not in files
    for entry in plan["keep"]:
        assert status[entry["id"]] in ("completed", "verified")
        assert f"{entry['vm']}/{entry['id']}/manifest.json" in files
    classes = {ident: cls for ident, _, cls in rows}
    assert classes["misc-d010"] == "last-verified" and classes["web-01-d030"] == "monthly"
    assert classes["web-01-d038"] == "weekly" and classes["db-1-d040"] == "last"
    assert _run(cli, "backup", "prune")["expire"] == []


def test_prune_of_one_vm_touches_no_other(cli: Cli, catalog: Path) -> None:
    before = {r for r in _state(catalog)[0] if not r[0].startswith("web-01-")}
    plan = _run(cli, "backup", "prune", "--vm", "web-01")
    assert set(plan["policies"]) == {"web-01"} and len(plan["expire"]) == 45 + 6 - 7
    assert {r for r in _state(catalog)[0] if not r[0].startswith("web-01-")} == before
