"""Retention that merges a chain into a synthetic full, and damage found range by range.

A full and three incrementals of a thin disk on the simulator (the test keeps a copy of the disk
at each point). A prune whose policy keeps the last two points merges the full and the first two
incrementals into a synthetic full standing for the second, on the target; the third is rebased on
it. Merges killed before and after the catalog's swap leave a restorable chain and are finished by
the next prune. The kept points restore byte for byte; a damaged byte of a stored range fails
verify and restore naming the point, the disk and the range's offset, and the failed restore leaves
nothing behind. What is stored is read from the target directory, not from ceso's output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.backup.bed import BackupBed
from tests.backup.test_incremental import _backup, _flat_entry, _manifest, _restore, _write
from tests.conftest import _clear_caches, unique
from tests.support.services import S3Server
from tests.support.vms import vm_names

MiB = 1 << 20
KiB = 1 << 10
KEEP_LAST_2 = {"keep_last": 2, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}


def _listed(bed: BackupBed, vm: str) -> dict[str, dict[str, Any]]:
    return {b["id"]: b for b in bed.run("backup", "list", "--vm", vm)}


def _files(store: Path) -> set[str]:
    return {str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()}


def test_prune_merges_a_chain_into_a_synthetic_full(
    backup_bed: BackupBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    bed = backup_bed
    vm = bed.make_vm(b"", power_on=True)
    flat = bed.flat(vm)
    flat.unlink()  # a fresh thin disk: all holes
    _write(flat, 0, os.urandom(MiB))
    _write(flat, 6 * MiB, os.urandom(768 * KiB))
    copies = [flat.read_bytes()]
    points = [_backup(bed, vm, "--compress", "none")]
    _write(flat, 3 * MiB, os.urandom(256 * KiB))
    copies.append(flat.read_bytes())
    points.append(_backup(bed, vm, "--compress", "none"))
    _write(flat, 512 * KiB, os.urandom(KiB))
    _write(flat, 9 * MiB, os.urandom(320 * KiB))  # the file grows
    copies.append(flat.read_bytes())
    points.append(_backup(bed, vm, "--compress", "none"))
    _write(flat, 6 * MiB, b"\0" * 64 * KiB)
    copies.append(flat.read_bytes())
    points.append(_backup(bed, vm, "--compress", "none"))
    full, inc1, inc2, inc3 = (p["backup_id"] for p in points)
    assert [p["chain_length"] for p in points] == [1, 2, 3, 4]
    assert bed.run("backup", "verify", inc3)["status"] == "verified"  # the anchor prune needs

    monkeypatch.setenv("CESO_BACKUPS__RETENTION", json.dumps(KEEP_LAST_2))
    _clear_caches()
    before = _files(bed.store)
    plan = bed.run("--dry-run", "backup", "prune", "--vm", vm)
    assert plan["merge"] == [
        {
            "vm": vm,
            "points": [full, inc1, inc2],
            "stands_for": inc2,
            "rebased": [inc3],
            "synthetic_id": None,
        }
    ]
    assert {e["id"]: e.get("merged_into") for e in plan["expire"]} == {
        full: "synthetic",
        inc1: "synthetic",
        inc2: "synthetic",
    }
    assert _files(bed.store) == before  # a dry run writes nothing

    # Killed after writing and checking the synthetic full, before the swap: the old chain is the
    # catalog's and restores; the half-made full is a pending leftover.
    import ceso.backup.synthetic as synthetic

    real_swap, real_settle = synthetic._swap, synthetic._settle

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_swap", killed)
    assert bed.cli("--json", "backup", "prune", "--vm", vm).exit_code != 0
    listed = _listed(bed, vm)
    (pending,) = [b for b in listed.values() if b["synthetic"]]
    assert pending["status"] == "pending" and pending["merged_from"] == [full, inc1, inc2]
    assert {listed[i]["status"] for i in (full, inc1, inc2, inc3)} == {"verified"}
    assert listed[inc3]["parent_id"] == inc2
    assert f"{vm}/{inc3}/manifest.next.json" in _files(bed.store)
    assert bed.run("backup", "verify", inc3)["status"] == "verified"

    # Killed after the swap committed, before the target was tidied: the catalog has the new
    # chain and it verifies (the rewritten manifest is read from beside the old one).
    monkeypatch.setattr(synthetic, "_swap", real_swap)
    monkeypatch.setattr(synthetic, "_settle", killed)
    assert bed.cli("--json", "backup", "prune", "--vm", vm).exit_code != 0
    listed = _listed(bed, vm)
    assert pending["id"] not in listed  # the leftover was removed first
    assert not any(f.startswith(f"{vm}/{pending['id']}/") for f in _files(bed.store))
    (made,) = [b for b in listed.values() if b["synthetic"]]
    synth = made["id"]
    assert made["status"] == "verified" and made["scope"] == "full" and made["chain_length"] == 1
    assert made["merged_from"] == [full, inc1, inc2] and made["created_at"] == listed[inc2]["created_at"]
    assert listed[inc3]["parent_id"] == synth and listed[inc3]["chain_length"] == 2
    assert {listed[i]["status"] for i in (full, inc1, inc2)} == {"expired"}
    assert f"{vm}/{inc3}/manifest.next.json" in _files(bed.store)
    assert bed.run("backup", "verify", inc3)["status"] == "verified"

    monkeypatch.setattr(synthetic, "_settle", real_settle)
    done = bed.run("backup", "prune", "--vm", vm)
    assert done["merge"] == [] and set(done["leftovers"]["settled"]) == {inc3, full, inc1, inc2}
    files = _files(bed.store)
    assert not any(f.startswith((f"{vm}/{full}/", f"{vm}/{inc1}/", f"{vm}/{inc2}/")) for f in files)
    assert not any(f.endswith("manifest.next.json") for f in files)
    assert json.loads((bed.store / vm / inc3 / "manifest.json").read_bytes())["parent"]["id"] == synth
    shown = bed.cli("backup", "list", "--vm", vm)
    assert "synthetic" in shown.stdout, shown.stdout

    # Stored like a full: the merged disk's allocated areas only, holes left out.
    entry = _flat_entry(_manifest(bed, vm, synth))
    assert entry["extents"] == [[0, MiB], [3 * MiB, 256 * KiB], [6 * MiB, 768 * KiB], [9 * MiB, 320 * KiB]]
    assert entry["logical_bytes"] == sum(n for _, n in entry["extents"]) and entry["disk_bytes"] == len(
        copies[2]
    )

    for point, expected in ((synth, copies[2]), (inc3, copies[3])):
        name = _restore(bed, point)
        assert (bed.datastore_dir / name / f"{vm}-flat.vmdk").read_bytes() == expected, point
    assert bed.run("backup", "verify", inc3)["status"] == "verified"

    # One byte of the synthetic full's second stored range damaged: verify and restore fail at
    # that range, naming the point, the disk and the range's offset on the disk.
    stored = bed.store / vm / synth / entry["stored_name"]
    body = bytearray(stored.read_bytes())
    at = MiB + 100 * KiB  # in the second 1 MiB range, which starts at disk offset 3 MiB
    assert entry["range_bytes"] == MiB and len(entry["range_sha256"]) == 3
    body[at] ^= 0xFF
    stored.write_bytes(bytes(body))
    name = unique("broken")
    failed = bed.cli("--json", "backup", "restore", inc3, "--as", name, "--no-power-on", "--timeout", "180")
    assert failed.exit_code != 0
    job = bed.run("job", "status", bed.run("job", "list")[0]["id"])
    assert job["state"] == "failed" and job["error"]["code"] == "backup_corrupt", job
    assert synth in job["error"]["message"] and f"offset {3 * MiB}" in job["error"]["message"], job
    assert name not in vm_names(bed.si) and not (bed.datastore_dir / name).exists()  # nothing half-restored
    broken = bed.cli("--json", "backup", "verify", inc3)
    assert broken.exit_code == 1
    error = broken.json()["error"]
    assert synth in error["message"] and f"disk {entry['disk']}" in error["message"], error
    assert f"offset {3 * MiB}" in error["message"], error


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # catalog paths run on both above
def test_a_chain_on_s3_merges_through_the_target_interface(
    backup_bed: BackupBed, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    bed = backup_bed
    bucket = unique("bkt")
    s3_server.make_bucket(bucket)
    added = bed.cli(
        "--json",
        "target",
        "add",
        "bucket",
        "--type",
        "s3",
        "--url",
        f"s3://{bucket}/ceso",
        "--endpoint",
        s3_server.endpoint,
        "--access-key-id",
        "test",
        "--secret-stdin",
        input="s3cr3t-value\n",
    )
    assert added.exit_code == 0, added.stdout + added.stderr
    bed.target = "bucket"
    vm = bed.make_vm(b"", power_on=True)
    flat = bed.flat(vm)
    flat.unlink()
    _write(flat, 0, os.urandom(MiB))
    ids = [_backup(bed, vm, "--encrypt")["backup_id"]]  # bytes stored encrypted stay encrypted
    _write(flat, 2 * MiB, os.urandom(128 * KiB))
    ids.append(_backup(bed, vm)["backup_id"])
    _write(flat, 64 * KiB, os.urandom(64 * KiB))
    expected = flat.read_bytes()
    ids.append(_backup(bed, vm)["backup_id"])
    assert bed.run("backup", "verify", ids[-1])["status"] == "verified"

    monkeypatch.setenv("CESO_BACKUPS__RETENTION", json.dumps({**KEEP_LAST_2, "keep_last": 1}))
    _clear_caches()
    (merge,) = bed.run("backup", "prune", "--vm", vm)["merge"]
    assert merge["points"] == ids and merge["rebased"] == [] and "error" not in merge
    synth = merge["synthetic_id"]
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="s3cr3t-value",
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"ceso/{vm}/").get("Contents", [])]
    assert keys and all(k.startswith(f"ceso/{vm}/{synth}/") for k in keys), keys
    body = s3.get_object(Bucket=bucket, Key=f"ceso/{vm}/{synth}/manifest.json")["Body"].read()
    manifest = json.loads(body)
    assert manifest["encryption"] is not None and manifest["merged_from"][0]["id"] == ids[0]
    assert all(f["stored_name"].endswith(".enc") for f in manifest["files"])
    assert bed.run("backup", "verify", synth)["status"] == "verified"
    name = _restore(bed, synth)
    assert (bed.datastore_dir / name / f"{vm}-flat.vmdk").read_bytes() == expected


def _point(ident: str, parent: str | None, day: int) -> Any:
    from datetime import UTC, datetime

    from ceso.db.backup_models import BackupSet

    return BackupSet(
        id=ident,
        vm="v",
        host="h",
        target="t",
        path=f"v/{ident}",
        kind="hot",
        compression="zstd",
        parent_id=parent,
        status="verified",
        created_at=datetime(2026, 1, day, tzinfo=UTC),
    )


def test_which_chains_merge() -> None:
    """Only a full kept for its chain alone merges, up to the first point the policy keeps; a
    chain that branches, or whose full the policy keeps, stays whole."""
    from ceso.backup.synthetic import plan_merges

    sets = [_point("f", None, 1), _point("a", "f", 2), _point("b", "a", 3), _point("c", "b", 4)]
    kept = {"c": "last", "b": "daily", "a": "chain", "f": "chain"}
    (merge,) = plan_merges(sets, kept, set())
    assert [p.id for p in merge.points] == ["f", "a", "b"] and [p.id for p in merge.rebased] == ["c"]
    assert merge.retention_class == "daily"
    assert plan_merges(sets, {**kept, "f": "monthly"}, set()) == []  # the policy keeps the full
    branched = [*sets, _point("x", "a", 5)]
    assert plan_merges(branched, {**kept, "x": "last"}, set()) == []  # two live points on "a"
    assert plan_merges(branched, kept, {"x"}) != []  # unless the other one expires now
