"""SFTP (a real sshd) and S3 (a local S3-compatible server) targets through the CLI; import, delete, prune."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.backup.bed import BackupBed, payload
from tests.conftest import _clear_caches, unique
from tests.support.services import S3Server, Sshd


def test_sftp_and_s3_targets_back_up_verify_restore_and_import(
    backup_bed: BackupBed, sshd: Sshd, s3_server: S3Server, ceso_env: dict[str, str]
) -> None:
    bed = backup_bed
    root = sshd.root / unique("sftp")
    root.mkdir()
    url = f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{root}"
    first = bed.cli(
        "--json",
        "target",
        "add",
        "box",
        "--type",
        "sftp",
        "--url",
        url,
        "--identity-file",
        str(sshd.client_key),
    )
    assert first.exit_code == 2 and first.json()["error"]["details"]["host_key"] == sshd.fingerprint()
    bed.run(
        "target",
        "add",
        "box",
        "--type",
        "sftp",
        "--url",
        url,
        "--identity-file",
        str(sshd.client_key),
        "--host-key",
        sshd.fingerprint(),
    )
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
    engine = sa.create_engine(ceso_env["CESO_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        stored = " ".join(
            str(v) for row in conn.execute(sa.text("SELECT * FROM backup_targets")) for v in row
        )
    assert "PRIVATE KEY" not in stored and "s3cr3t-value" not in stored and "sftp-root" in stored

    data = payload(2 << 20)
    source = bed.make_vm(data)
    ids = {}
    for target in ("box", "bucket"):
        job = bed.run("backup", "create", source, "--target", target, "--encrypt", "--timeout", "120")
        assert job["state"] == "succeeded", job
        ids[target] = job["result"]["backup_id"]
        assert bed.run("backup", "verify", ids[target])["status"] == "verified"
    assert any(p.name == "manifest.json" for p in root.rglob("*"))
    name = unique("from-s3")
    restored = bed.run("backup", "restore", ids["bucket"], "--as", name, "--no-power-on", "--timeout", "120")
    assert restored["state"] == "succeeded", restored
    assert (bed.datastore_dir / name / f"{source}-flat.vmdk").read_bytes() == data

    # The catalog is lost; the targets still know what exists.
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM backup_files"))
        conn.execute(sa.text("DELETE FROM backup_sets"))
    engine.dispose()
    assert bed.run("backup", "list") == []
    for target in ("box", "bucket"):
        result = bed.run("backup", "import", "--target", target)
        assert result["imported"] == [ids[target]]
        assert bed.run("backup", "import", "--target", target)["already_known"] == 1
    assert {b["id"]: b["status"] for b in bed.run("backup", "list")} == {
        ids["box"]: "completed",
        ids["bucket"]: "completed",
    }
    assert bed.run("backup", "verify", ids["box"])["status"] == "verified"
    deleted = bed.run("backup", "delete", ids["box"], "--yes")
    assert deleted["files_deleted"] >= 4
    assert not any(p.is_file() for p in root.rglob("*"))
    _clear_caches()


def test_prune_keeps_the_newest_verified_and_everything_newer(
    backup_bed: BackupBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    bed = backup_bed
    for key, value in {"KEEP_LAST": "1", "KEEP_DAILY": "0", "KEEP_WEEKLY": "0", "KEEP_MONTHLY": "0"}.items():
        monkeypatch.setenv(f"CESO_BACKUPS__RETENTION__{key}", value)
    _clear_caches()
    source = bed.make_vm(payload(1 << 20))
    ids = [
        bed.run("backup", "create", source, "--target", bed.target, "--timeout", "120")["result"]["backup_id"]
        for _ in range(3)
    ]
    assert bed.run("--dry-run", "backup", "prune")["expire"] == []  # nothing verified yet: nothing goes
    bed.run("backup", "verify", ids[1])
    plan = bed.run("--dry-run", "backup", "prune")
    assert [e["id"] for e in plan["expire"]] == [ids[0]]
    assert (bed.store / source / ids[0]).is_dir()
    bed.run("backup", "prune")
    statuses = {b["id"]: b["status"] for b in bed.run("backup", "list", "--vm", source)}
    assert statuses == {ids[0]: "expired", ids[1]: "verified", ids[2]: "completed"}
    assert not (bed.store / source / ids[0]).exists() and (bed.store / source / ids[1]).is_dir()
    assert bed.run("backup", "prune")["expire"] == []


def test_datastore_target_round_trip(backup_bed: BackupBed) -> None:
    bed = backup_bed
    bed.run(
        "target",
        "add",
        "ds",
        "--type",
        "datastore",
        "--host",
        bed.host,
        "--datastore",
        "LocalDS_0",
        "--path",
        "ceso-backups",
    )
    data = payload(1 << 20)
    source = bed.make_vm(data)
    job = bed.run("backup", "create", source, "--target", "ds", "--timeout", "120")
    assert job["state"] == "succeeded", job
    backup_id = job["result"]["backup_id"]
    assert (bed.datastore_dir / "ceso-backups" / source / backup_id / "manifest.json").is_file()
    assert bed.run("backup", "verify", backup_id)["status"] == "verified"
    name = unique("from-ds")
    assert (
        bed.run("backup", "restore", backup_id, "--as", name, "--no-power-on", "--timeout", "120")["state"]
        == "succeeded"
    )
    assert (bed.datastore_dir / name / f"{source}-flat.vmdk").read_bytes() == data
    assert Path(bed.datastore_dir / name).is_dir()
