"""The CLI through a local cesod: the operator socket, who may use it, and the same answers as in-process.

A real cesod, a real worker and the simulator. What is checked is what an operator
would check: the VM on the host, its guestinfo, the job row and audit records, cesod's
access log (did the command go through cesod or not), and the CLI's output and exit codes.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ceso.vm.specs import CreateVm
from tests.conftest import Cli, unique
from tests.security.helpers import audit_rows
from tests.support.cesod import Cesod
from tests.support.imports import HEAVY, ceso_imports
from tests.support.vms import devices_of, extra_config, snapshot_names, vm_by_name, vm_names
from tests.vm.conftest import TemplateBed

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"


def _access_lines(daemon: Cesod) -> list[dict[str, Any]]:
    if not daemon.access_log.exists():
        return []
    return [json.loads(line.split(" ", 2)[2]) for line in daemon.access_log.read_text().splitlines()]


def _socket_of(daemon: Cesod) -> Path:
    for line in daemon.output().splitlines():
        if "serving the local operator on " in line:
            return Path(line.rsplit(" on ", 1)[1])
    pytest.fail(f"cesod did not open its operator socket:\n{daemon.output()[-2000:]}")


def _userdata(vm: Any) -> str:
    config = extra_config(vm)
    assert config["guestinfo.userdata.encoding"] == "gzip+base64"
    return gzip.decompress(base64.b64decode(config["guestinfo.userdata"])).decode()


def test_cli_create_goes_through_the_local_cesod_with_files_read_by_the_cli(
    cli: Cli, bed: TemplateBed, start_cesod: Any, ceso_env: dict[str, str], tmp_path: Path
) -> None:
    daemon = start_cesod()
    path = _socket_of(daemon)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    key_file = tmp_path / "ops.pub"
    key_file.write_text(KEY + "\n")
    userdata = tmp_path / "extra.yaml"
    userdata.write_text("#cloud-config\nruncmd:\n  - [touch, /etc/forwarded]\n")
    name = unique("fwd")

    done = cli(
        "--json", "vm", "create", name, "--template", bed.template, "--ip", "192.0.2.31/24",
        "--gateway", "192.0.2.1", "--ssh-key", str(key_file), "--userdata", str(userdata), "--timeout", "60",
        subprocess_=True,
    )  # fmt: skip

    assert done.exit_code == 0, done.stdout + done.stderr
    job = done.json()
    assert job["state"] == "succeeded" and job["kind"] == "vm.create" and job["result"]["name"] == name
    assert set(job["params"]) == set(CreateVm.model_fields)  # the job stored the spec cesod was sent
    calls = [(c["method"], c["outcome"]) for line in _access_lines(daemon) for c in line["calls"]]
    assert calls == [("vm.create", "ok")]
    (line,) = _access_lines(daemon)
    assert line["client"].startswith("unix:pid=") and line["actor"] == job["actor"]
    assert job["actor"].startswith("operator:")
    vm = vm_by_name(bed.si, name)
    assert vm is not None and vm.runtime.powerState == "poweredOn"
    text = _userdata(vm)
    assert KEY in text and "/etc/forwarded" in text  # both files were read by the CLI, not by cesod
    submitted = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'job.submitted'")
    assert [(r["actor"], r["source"], r["job_id"]) for r in submitted] == [(job["actor"], "cli", job["id"])]
    assert submitted[0]["client_addr"].startswith("unix:pid=")

    # Forwarded, the CLI process needs none of the SQL, queue or vSphere libraries, nor pydantic:
    # cesod parses the spec (ceso.cli.spec_options).
    proc, imported = ceso_imports(
        ["--json", "vm", "create", unique("lean"), "--template", bed.template, "--timeout", "60"],
        ceso_env,
        heavy=(*HEAVY, "pydantic"),
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["state"] == "succeeded", proc.stdout + proc.stderr
    assert imported == set()
    assert len(_access_lines(daemon)) == 2

    # CESO_NO_CESOD=1: the same command runs in the CLI's own process; cesod sees nothing.
    other = unique("own")
    own = _run(ceso_env, {"CESO_NO_CESOD": "1"}, "--json", "vm", "create", other, "--template", bed.template,
               "--timeout", "60")  # fmt: skip
    assert own.returncode == 0, own.stdout + own.stderr
    assert json.loads(own.stdout)["state"] == "succeeded"
    assert len(_access_lines(daemon)) == 2
    assert vm_by_name(bed.si, other) is not None


def test_cli_clone_power_and_delete_go_through_the_local_cesod(
    cli: Cli, bed: TemplateBed, start_cesod: Any
) -> None:
    daemon = start_cesod()
    source, name = unique("src"), unique("cln")
    made = cli(
        "--json", "vm", "create", source, "--template", bed.template, "--no-power-on", "--timeout", "60"
    )
    assert made.exit_code == 0 and made.json()["state"] == "succeeded", made.stdout + made.stderr
    cloned = cli("--json", "vm", "clone", source, name, "--ip", "192.0.2.32/24", "--gateway", "192.0.2.1",
                 "--timeout", "60")  # fmt: skip
    assert cloned.exit_code == 0, cloned.stdout + cloned.stderr
    job = cloned.json()
    assert job["state"] == "succeeded" and job["kind"] == "vm.clone"
    # The global options may follow the command, as govc takes them; --dry-run stays in this process.
    planned = cli("vm", "power", "on", name, "--dry-run", "--json")
    assert planned.exit_code == 0 and planned.json()["dry_run"] is True, planned.stdout + planned.stderr
    powered = cli("vm", "power", "on", name, "--timeout", "60", "--json")
    assert powered.exit_code == 0 and powered.json()["kind"] == "vm.power", powered.stdout + powered.stderr
    src, new = vm_by_name(bed.si, source), vm_by_name(bed.si, name)
    assert src is not None and new is not None
    assert new.config.uuid != src.config.uuid and new.runtime.powerState == "poweredOn"
    assert "192.0.2.32" in gzip.decompress(base64.b64decode(extra_config(new)["guestinfo.metadata"])).decode()

    # delete goes through cesod only with --yes: otherwise the CLI asks (or refuses) first.
    deleted = cli("--json", "vm", "delete", name, "--force", "--yes", "--timeout", "60")
    assert deleted.exit_code == 0 and deleted.json()["kind"] == "vm.delete", deleted.stdout + deleted.stderr
    assert vm_by_name(bed.si, name) is None
    unconfirmed = cli("--json", "vm", "delete", source)
    assert unconfirmed.exit_code == 2 and vm_by_name(bed.si, source) is not None
    assert [c["method"] for line in _access_lines(daemon) for c in line["calls"]] == [
        "vm.create", "vm.clone", "vm.power", "vm.delete"
    ]  # fmt: skip


def test_cli_reconfigure_and_snapshots_go_through_the_local_cesod(
    cli: Cli, bed: TemplateBed, start_cesod: Any
) -> None:
    daemon = start_cesod()
    name = unique("chg")
    made = cli("--json", "vm", "create", name, "--template", bed.template, "--no-power-on", "--timeout", "60")
    assert made.exit_code == 0 and made.json()["state"] == "succeeded", made.stdout + made.stderr
    changed = cli("--json", "vm", "reconfigure", name, "--cpus", "2", "--memory", "2G", "--disk-grow", "1", "20G",
                  "--timeout", "60")  # fmt: skip
    assert changed.exit_code == 0 and changed.json()["kind"] == "vm.reconfigure", (
        changed.stdout + changed.stderr
    )
    vm = vm_by_name(bed.si, name)
    assert vm is not None
    (disk,) = devices_of(vm, "VirtualDisk")
    assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB, disk.capacityInBytes) == (
        2,
        2048,
        20 << 30,
    )

    for args in (("create", name, "s1", "--description", "before"), ("revert", name, "s1")):
        done = cli("--json", "vm", "snapshot", *args, "--timeout", "60")
        assert done.exit_code == 0 and done.json()["state"] == "succeeded", done.stdout + done.stderr
        assert snapshot_names(bed.si, vm_by_name(bed.si, name)) == ["s1"]
    deleted = cli("--json", "vm", "snapshot", "delete", name, "s1", "--timeout", "60")
    assert deleted.exit_code == 0 and deleted.json()["kind"] == "vm.snapshot.delete", deleted.stdout
    assert snapshot_names(bed.si, vm_by_name(bed.si, name)) == []
    assert [c["method"] for line in _access_lines(daemon) for c in line["calls"]] == [
        "vm.create", "vm.reconfigure", "vm.snapshot.create", "vm.snapshot.revert", "vm.snapshot.delete"
    ]  # fmt: skip


def _run(env: dict[str, str], extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    ceso = Path(sys.executable).with_name("ceso")
    return subprocess.run(
        [str(ceso), *args], env={**os.environ, **env, **extra}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


REFUSALS = [
    (("vm", "create", "bad/name", "--template", "{template}"), 2),  # refused by the spec
    (("vm", "create", "{name}", "--template", "{template}", "--ip", "300.1.1.1/24"), 2),
    (("vm", "create", "{name}", "--template", "{template}", "--ip", "192.0.2.5/24", "--gateway", "198.51.100.1"), 2),
    (("vm", "create", "{name}", "--template", "no-such-template"), 4),
    (("vm", "create", "{template}", "--template", "{template}"), 5),
    (("vm", "clone", "no-such-vm", "{name}"), 4),
    (("vm", "power", "reset", "no-such-vm"), 4),
    (("vm", "delete", "{template}", "--yes"), 5),
    (("backup", "create", "no-such-vm"), 2),  # no target given and no backups.default_target
    (("backup", "restore", "0123abcd", "--as", "{name}"), 4),
    (("vm", "reconfigure", "no-such-vm", "--cpus", "2"), 4),
    (("vm", "reconfigure", "{template}", "--memory", "lots"), 2),  # refused by the spec
    (("vm", "snapshot", "create", "no-such-vm", "s1"), 4),
    (("vm", "snapshot", "delete", "{template}", "s1"), 5),  # a template is never changed
]  # fmt: skip


def test_refusals_through_cesod_match_the_cli_and_change_nothing(
    cli: Cli, bed: TemplateBed, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    # One bed and one cesod for all the cases: each case runs the command four times (through
    # cesod and in-process, with and without --json) and compares the answers byte for byte.
    daemon = start_cesod()
    before = set(vm_names(bed.si))
    for args, exit_code in REFUSALS:
        argv = [a.format(template=bed.template, name=unique("nope")) for a in args]
        answers = {}
        for label, extra in (("cesod", {}), ("own", {"CESO_NO_CESOD": "1"})):
            for json_flag in ((), ("--json",)):
                proc = _run(ceso_env, extra, *json_flag, *argv)
                answers[label, bool(json_flag)] = (proc.returncode, proc.stdout, proc.stderr)
        assert answers["cesod", True] == answers["own", True], argv
        assert answers["cesod", False] == answers["own", False], argv
        code, out, _ = answers["cesod", True]
        assert code == exit_code and json.loads(out)["error"]["code"], (argv, out)
    forwarded = sum(1 for line in _access_lines(daemon) for _ in line["calls"])
    # The --json and plain runs of each case went through cesod, which parses the spec itself.
    assert forwarded == 2 * len(REFUSALS)
    assert set(vm_names(bed.si)) == before
    assert cli("--json", "job", "list").json() == []


def _ask_as_nobody(path: Path) -> bytes:
    """Send a JSON-RPC request to ``path`` from a forked child running as uid and gid 65534; the
    raw answer. (A fork, not a new interpreter: the venv's lives under root's home, closed to others.)"""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, ask, hand the answer back; never returns
        status = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            body = b'{"jsonrpc":"2.0","id":1,"method":"vm.list","params":{}}'
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(path))
                sock.sendall(b"POST /rpc HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                answer = sock.makefile("rb").read()
            os.write(write_fd, answer)
            status = 0
        except BaseException as exc:
            os.write(write_fd, f"child failed: {exc!r}".encode())
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, raw
    return raw


def test_another_user_is_refused_before_the_request_is_read(
    bed: TemplateBed, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test switches to another user id: run it as root (CI does)")
    daemon = start_cesod()
    path = _socket_of(daemon)
    # Open the directory and socket to everyone: the peer credential check must still refuse.
    path.parent.parent.chmod(0o755)  # the test's own XDG_RUNTIME_DIR
    path.parent.chmod(0o755)
    path.chmod(0o666)
    raw = _ask_as_nobody(path)
    assert raw.startswith(b"HTTP/1.0 403"), raw
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["data"]["code"] == "not_permitted" and "65534" in body["error"]["message"]
    refused = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'access.refused'")
    assert [(r["source"], r["client_addr"].split(",")[-1]) for r in refused] == [("cesod", "uid=65534")]
    assert [line["calls"][0]["method"] for line in _access_lines(daemon)] == ["-"]


def test_cli_ignores_a_socket_directory_others_can_write(
    bed: TemplateBed, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    daemon = start_cesod()
    path = _socket_of(daemon)
    path.parent.chmod(0o777)  # someone could have planted this socket: do not send it anything
    try:
        proc = _run(ceso_env, {}, "--json", "vm", "create", unique("own"), "--template", bed.template,
                    "--timeout", "60")  # fmt: skip
    finally:
        path.parent.chmod(0o700)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["state"] == "succeeded"
    assert _access_lines(daemon) == []


def test_second_cesod_of_the_same_configuration_serves_agents_only(
    start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    first = start_cesod()
    second = start_cesod(CESO_CESOD__MAX_BATCH="3")  # cesod's own settings are not part of the identity
    path = _socket_of(first)
    assert "another cesod already serves this configuration" in second.output()
    assert path.exists()
    first.stop()
    assert not path.exists()  # removed on a clean stop
    with socket.socket(socket.AF_UNIX) as sock, pytest.raises(OSError):
        sock.connect(str(path))
