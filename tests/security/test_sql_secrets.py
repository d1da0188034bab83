"""secret_store: sql — every credential encrypted in SQL under the installation's master key.

Two "machines" share only PostgreSQL or SQLite, Redis and the master key file: machine A (this
process and the CLI) registers the host, submits a create with userdata and an encrypted backup;
machine B (its own HOME, data directory and runtime directory) runs the worker. Then nothing of
the secrets is found in plaintext in SQL, Redis or the logs, and a machine without the key (or
with another key) is stopped at worker start with one clear error.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from ceso.cloudinit.encoding import decode_guestinfo
from tests.conftest import CESO_BIN, Cli, _clear_caches, unique
from tests.support.metrics_log import logged_metrics_url
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, extra_config, make_template, vm_by_name

PASSWORD = "host-pw-canary-7d3f9a"
USERDATA_CANARY = "userdata-canary-51c0e2"


@pytest.fixture
def sql_store(ceso_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process and its CLI use the SQL store with a new master key; returns the key file."""
    key = tmp_path / "a" / "master.key"
    monkeypatch.setenv("CESO_SECRET_STORE", "sql")
    monkeypatch.setenv("CESO_MASTER_KEY_FILE", str(key))
    ceso_env.update(CESO_SECRET_STORE="sql", CESO_MASTER_KEY_FILE=str(key))
    _clear_caches()
    return key


def _machine(base: dict[str, str], root: Path, key: Path | None) -> dict[str, str]:
    """The environment of another machine: its own home, data and runtime directories, the
    shared database and Redis, and its own copy of the master key (or a path that is missing)."""
    root.mkdir(parents=True)
    run_dir = tempfile.mkdtemp(prefix="ceso-m-")
    env = {
        **base,
        "HOME": str(root / "home"),
        "CESO_DATA_DIR": str(root / "data"),
        "XDG_RUNTIME_DIR": run_dir,
        "CESO_MASTER_KEY_FILE": str(root / "master.key"),
    }
    if key is not None:
        shutil.copyfile(key, root / "master.key")
        (root / "master.key").chmod(0o600)
    return env


def _worker_start_fails(env: dict[str, str], host: str) -> str:
    proc = subprocess.run(
        [str(CESO_BIN), "worker", "--host", host, "--metrics-port", "-1"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stderr


def _sql_text(url: str) -> str:
    engine = sa.create_engine(url)
    parts = []
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            parts += [repr(tuple(row)) for row in conn.execute(sa.text(f'SELECT * FROM "{table}"'))]
    engine.dispose()
    return "\n".join(parts)


def _redis_text(url: str) -> str:
    client = redis.Redis.from_url(url)
    readers: dict[str, Any] = {
        "string": client.get,
        "list": lambda k: client.lrange(k, 0, -1),
        "hash": client.hgetall,
        "set": client.smembers,
        "zset": lambda k: client.zrange(k, 0, -1),
    }
    parts = [repr((key, readers.get(client.type(key).decode(), repr)(key))) for key in client.scan_iter()]
    return "\n".join(parts)


def test_a_worker_on_another_machine_uses_every_secret(
    cli: Cli,
    sim: SimulatorHost,
    start_worker: Any,
    ceso_env: dict[str, str],
    sql_store: Path,
    tmp_path: Path,
) -> None:
    created = cli("--json", "secrets", "init", "--output", str(sql_store))
    assert created.exit_code == 0, created.stderr
    assert sql_store.stat().st_mode & 0o777 == 0o600
    key_text = sql_store.read_text()
    assert key_text.strip() not in created.stdout + created.stderr
    host = unique("sim")
    added = cli(
        "host", "add", host, "--url", sim.url, "--user", "root", "--password-stdin", input=PASSWORD + "\n"
    )
    assert added.exit_code == 0, added.stderr
    si = sim.connect()
    template = unique("tmpl")
    make_template(si, sim.datastore_dir(), template, b"template bytes" * 1000)
    assert cli("template", "add", template, "--host", host).exit_code == 0
    store = tmp_path / "backups"
    store.mkdir()
    target = unique("local")
    assert cli("target", "add", target, "--type", "local", "--path", str(store)).exit_code == 0

    machine_b = _machine(ceso_env, tmp_path / "b", sql_store)
    worker = start_worker(host, env=machine_b)
    userdata = tmp_path / "user-data"
    userdata.write_text(f"#cloud-config\nruncmd:\n  - echo {USERDATA_CANARY}\n")
    vm = unique("web")
    try:
        made = cli(
            "--json", "vm", "create", vm, "--template", template, "--ip", "192.0.2.40/24",
            "--userdata", str(userdata), "--timeout", "120",
        )  # fmt: skip
        assert made.exit_code == 0, made.stdout + made.stderr
        assert made.json()["state"] == "succeeded"
        docs = decode_guestinfo(extra_config(vm_by_name(si, vm)))
        assert USERDATA_CANARY in docs["userdata"]  # machine B unsealed it from SQL
        backup = cli("--json", "backup", "create", vm, "--target", target, "--encrypt", "--timeout", "120")
        assert backup.exit_code == 0, backup.stdout + backup.stderr
        backup_id = backup.json()["result"]["backup_id"]
        verified = cli("--json", "backup", "verify", backup_id)  # machine A reads the key from SQL
        assert verified.exit_code == 0, verified.stdout + verified.stderr
    finally:
        if vm_by_name(si, vm) is not None:
            destroy_vm(si, vm)

    # No machine keeps a local copy: the secrets are in SQL only, encrypted.
    for data_dir in (Path(ceso_env["CESO_DATA_DIR"]), Path(machine_b["CESO_DATA_DIR"])):
        assert not (data_dir / "secrets.enc").exists()
    from ceso.backup.keys import ENCRYPTION_KEY_NAME
    from ceso.runtime import get_runtime

    backup_key = get_runtime().secrets.get(ENCRYPTION_KEY_NAME)
    canaries = {
        "host password": PASSWORD,
        "userdata": USERDATA_CANARY,
        "backup key": backup_key,
        "backup key (raw hex)": base64.b64decode(backup_key).hex(),
        "master key": key_text.strip(),
    }
    places = {
        "SQL": _sql_text(ceso_env["CESO_DATABASE_URL"]),
        "Redis": _redis_text(ceso_env["CESO_REDIS_URL"]),
        "worker log": worker.log_path.read_text(errors="replace"),
        # What Prometheus scrapes: every series, label and help text the worker exports after the jobs.
        "worker metrics": _metrics_text(worker.log_path.read_text(errors="replace")),
    }
    found = [
        (what, where) for what, value in canaries.items() for where, text in places.items() if value in text
    ]
    assert found == []
    names = get_runtime().secrets.names()  # type: ignore[attr-defined]
    assert f"host:{host}:password" in names and ENCRYPTION_KEY_NAME in names

    # A machine without the key, and one with another key, stop at worker start with one line.
    said = _worker_start_fails(_machine(ceso_env, tmp_path / "c", None), host)
    assert "no master key" in said and "ceso secrets init" in said
    other = tmp_path / "other.key"
    other.write_bytes(base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
    other.chmod(0o600)
    said = _worker_start_fails(_machine(ceso_env, tmp_path / "d", other), host)
    assert "does not hold" in said and "give this machine the installation's master key" in said


def _metrics_text(worker_log: str) -> str:
    import urllib.request

    url = logged_metrics_url(worker_log, "the worker")
    with urllib.request.urlopen(url, timeout=30) as response:
        text: str = response.read().decode()
    assert "ceso_" in text, text[:500]  # ceso's own series are in it
    return text


def test_rotation_without_downtime(cli: Cli, sql_store: Path, ceso_env: dict[str, str]) -> None:
    from ceso.runtime import get_runtime

    assert cli("secrets", "init", "--output", str(sql_store)).exit_code == 0
    old_key = sql_store.read_text().strip()
    secrets = get_runtime().secrets
    for i in range(5):
        secrets.set(f"test:{i}", f"value-{i}")
    new = sql_store.parent / "new.key"
    assert cli("secrets", "init", "--output", str(new)).exit_code == 0
    new_key = new.read_text().strip()
    # Every machine gets the new key first and keeps the old one below it: both open everything.
    sql_store.write_text(f"{new_key}\n{old_key}\n")
    _clear_caches()
    checked = cli("--json", "secrets", "check")
    assert checked.exit_code == 0, checked.stderr
    assert list(checked.json()["secrets_by_key"].values()) == [5]
    rotated = cli("--json", "secrets", "rotate")
    assert rotated.exit_code == 0, rotated.stderr
    assert rotated.json()["reencrypted"] == 5 and rotated.json()["left_under_other_keys"] == {}
    # Then the old line goes: the new key alone opens every secret, the old one alone none.
    sql_store.write_text(f"{new_key}\n")
    _clear_caches()
    assert cli("secrets", "check").exit_code == 0
    assert get_runtime().secrets.get("test:3") == "value-3"
    sql_store.write_text(f"{old_key}\n")
    _clear_caches()
    refused = cli("secrets", "check")
    assert refused.exit_code == 2 and "does not hold" in refused.stderr, refused.stderr


def test_bad_master_key_files_are_one_clear_error(cli: Cli, sql_store: Path) -> None:
    missing = cli("secrets", "check")
    assert missing.exit_code == 2 and "no master key" in missing.stderr
    sql_store.parent.mkdir(parents=True, exist_ok=True)
    sql_store.write_text("not a key\n")
    sql_store.chmod(0o600)
    garbage = cli("secrets", "check")
    assert garbage.exit_code == 2 and "line 1: not a master key" in garbage.stderr
    sql_store.write_bytes(base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
    sql_store.chmod(0o644)
    loose = cli("secrets", "check")
    assert loose.exit_code == 2 and "readable by other users" in loose.stderr
    sql_store.chmod(0o600)
    assert cli("secrets", "check").exit_code == 0
    assert cli("secrets", "init", "--output", str(sql_store)).exit_code == 2  # never overwritten
