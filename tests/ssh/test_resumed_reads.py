"""A backup over SSH (a free-licensed host) whose ``cat`` of the disk is cut mid-copy.

The SSH connection goes through a FaultProxy that resets it once a few MiB of the disk have gone
through, and refuses new connections for a while. A cut shorter than ``jobs.host_retry_s``: the
worker logs in again and the read goes on with busybox ``dd`` from the 1 MiB block it reached (the
emulator's log shows the command; it takes exactly ``if``/``bs``/``skip``); the point holds
the source's bytes (verified, and decoded with the zstd tool); no snapshot is left. A cut longer than the window: the job fails
``host_unreachable``, nothing of the point is at the target, the snapshot goes once the host is back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.ssh.conftest import local_si, make_ssh_template
from tests.support.proxy import FaultProxy
from tests.support.simulator import SimulatorHost
from tests.support.sshd import EMULATORS, SshServer
from tests.support.vms import snapshot_names, vm_by_name

MIB = 1 << 20
ONE_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _run(cli: Cli, *args: str) -> Any:
    result = cli("--json", *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json()


def _bed(cli: Cli, sim: SimulatorHost, shell: SshServer, tmp_path: Path) -> tuple[str, FaultProxy, str, Path]:
    """A host whose SSH login goes through a FaultProxy, a local target: (host, proxy, target, store)."""
    proxy = FaultProxy(("127.0.0.1", shell.port))
    key_file = tmp_path / "esxi_key"
    key_file.write_text(shell.client_key)
    key_file.chmod(0o600)
    added = cli(
        "--json", "host", "add", unique("sshcut"), "--url", sim.url, "--user", "root", "--password-stdin",
        "--ssh-user", shell.user, "--ssh-port", str(proxy.port), "--ssh-key", str(key_file),
        "--ssh-host-key", shell.host_key_fingerprint(), input="pw\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.stdout + added.stderr
    store = tmp_path / "store"
    store.mkdir()
    target = unique("local")
    assert cli("target", "add", target, "--type", "local", "--path", str(store)).exit_code == 0
    return str(added.json()["name"]), proxy, target, store


def _running_vm(shell: SshServer, sim: SimulatorHost, data: bytes) -> str:
    name = unique("src")
    make_ssh_template(shell, sim, name, data, mac=f"00:50:56:3e:{os.urandom(1).hex()}:{os.urandom(1).hex()}")
    task = vm_by_name(local_si(sim), name).PowerOnVM_Task()
    deadline = time.monotonic() + 30
    while task.info.state not in ("success", "error"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return name


def _snapshots(sim: SimulatorHost, vm: str) -> list[str]:
    si = sim.connect()
    return snapshot_names(si, vm_by_name(si, vm))


def _retries(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The tries recorded while the disk's data file was copied (the cut comes in the middle of it)."""
    return [r for s in job["steps"] if s["name"].endswith("-flat.vmdk") for r in s.get("retries", [])]


@ONE_DATABASE
def test_a_cut_read_over_ssh_resumes_with_dd(
    cli: Cli, free_sim: SimulatorHost, shell: SshServer, tmp_path: Path, start_worker: Any
) -> None:
    host, proxy, target, store = _bed(cli, free_sim, shell, tmp_path)
    try:
        start_worker(host, concurrency=1, env={"CESO_JOBS__HOST_RETRY_S": "30"})
        data = os.urandom(4 * MIB) + bytes(8 * MIB) + os.urandom(4 * MIB)
        source = _running_vm(shell, free_sim, data)
        mark = len(shell.invocations())
        proxy.trip(8 * MIB, outage_s=2.5)  # half-way: what the sockets held when reset is read again
        job = _run(cli, "backup", "create", source, "--target", target, "--timeout", "120")
        assert job["state"] == "succeeded", job
        assert proxy.tripped.is_set() and job["result"]["route"] == "ssh" and job["result"]["kind"] == "hot"
        retries = _retries(job)
        assert retries and all(r["wait_s"] is not None for r in retries), retries
        at_byte = max(r["at_byte"] for r in retries)
        flat = f"/vmfs/volumes/LocalDS_0/{source}/{source}-flat.vmdk"
        ran = [[i["tool"], *i["argv"]] for i in shell.invocations()[mark:]]
        assert ["dd", f"if={flat}", f"bs={MIB}", f"skip={at_byte // MIB}"] in ran, ran
        assert _snapshots(free_sim, source) == []

        # The point holds the source's bytes: verified by ceso, and decoded here with the zstd tool.
        assert _run(cli, "backup", "verify", job["id"])["status"] == "verified"
        (stored,) = (store / source / job["id"]).glob("*-flat.vmdk.zst")
        decoded = subprocess.run(["zstd", "-dc", str(stored)], capture_output=True, check=True).stdout
        assert decoded == data
    finally:
        proxy.close()


@ONE_DATABASE
def test_a_cut_over_ssh_longer_than_the_window_fails_cleanly(
    cli: Cli, free_sim: SimulatorHost, shell: SshServer, tmp_path: Path, start_worker: Any
) -> None:
    host, proxy, target, store = _bed(cli, free_sim, shell, tmp_path)
    try:
        start_worker(
            host, concurrency=1, env={"CESO_JOBS__HOST_RETRY_S": "2", "CESO_JOBS__STALE_AFTER_S": "3"}
        )
        source = _running_vm(shell, free_sim, os.urandom(10 * MIB))
        proxy.trip(3 * MIB, outage_s=3.5)
        result = cli("--json", "backup", "create", source, "--target", target, "--timeout", "120")
        assert result.exit_code != 0, result.stdout
        job = result.json()
        assert job["state"] == "failed" and job["error"]["code"] == "host_unreachable", job["error"]
        retries = _retries(job)
        assert retries and retries[-1]["wait_s"] is None, retries
        (entry,) = _run(cli, "backup", "list", "--vm", source)
        assert entry["status"] == "failed"
        assert [p for p in store.rglob("*") if p.is_file()] == []
        deadline = time.monotonic() + 45
        while _snapshots(free_sim, source):
            assert time.monotonic() < deadline, "the backup's snapshot outlived its job"
            time.sleep(0.5)
    finally:
        proxy.close()


def test_emulated_dd_takes_only_what_every_busybox_dd_has(shell: SshServer, free_sim: SimulatorHost) -> None:
    folder = free_sim.datastore_dir() / unique("dd")
    folder.mkdir()
    data = os.urandom(3 * MIB + 5)
    (folder / "f.bin").write_bytes(data)
    source = f"if=/vmfs/volumes/LocalDS_0/{folder.name}/f.bin"
    env = {**os.environ, "CESO_ESXI_SHELL_CONFIG": str(shell.config_path)}

    def dd(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, str(EMULATORS / "dd.py"), *args], check=False, capture_output=True, env=env
        )

    done = dd(source, f"bs={MIB}", "skip=2")
    assert done.returncode == 0 and done.stdout == data[2 * MIB :], done.stderr
    for refused in (
        [source, f"bs={MIB}", "iflag=skip_bytes", "skip=5"],  # an optional busybox feature
        [source, "of=/tmp/x"],
        [source, "bs=1M"],
        [source, "--skip=1"],
        [f"bs={MIB}", "skip=1"],  # standard input
        [source, "skip=1", "skip=2"],
    ):
        assert dd(*refused).returncode == 1, refused
