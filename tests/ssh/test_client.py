"""The SSH adapter against a real OpenSSH server: login, pinning, failures, timeouts, quoting, files.

Key login is tested against sshd; password login against a paramiko server
in this process (an OpenSSH password login would need the account's real
password — see tests/support/sshd.py).
"""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest

from ceso.errors import (
    AuthenticationError,
    ConflictError,
    HostUnreachableError,
    InvalidInputError,
    NotFoundError,
    OperationError,
    ThumbprintMismatchError,
    TimeoutExpiredError,
)
from ceso.ssh import commands as cmd
from ceso.ssh import files
from ceso.ssh.client import SshClient
from ceso.ssh.keys import fetch_host_key, fingerprint
from ceso.ssh.target import SshTarget
from tests.conftest import closed_port
from tests.ssh.conftest import target_for
from tests.support.sshd import SshServer

WRONG_FP = "SHA256:" + "A" * 43


def test_key_login_runs_commands_on_one_pooled_connection(ssh_client: SshClient, shell: SshServer) -> None:
    first = ssh_client.run(cmd.get_allvms())
    assert first.exit_status == 0 and first.stdout.startswith("Vmid")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ssh_client.run(cmd.filesystem_list()).stdout, range(8)))
    assert all("LocalDS_0" in r for r in results)
    assert ssh_client.logins == 1  # one SSH connection carried all nine commands


def test_the_host_key_shown_is_the_server_key(shell: SshServer) -> None:
    key_type, fp = fetch_host_key("esx-test", "127.0.0.1", shell.port)
    assert (key_type, fp) == ("ssh-ed25519", shell.host_key_fingerprint())
    assert (
        fingerprint(paramiko.Ed25519Key.from_private_key_file(str(shell.workdir / "ssh_host_ed25519_key")))
        == fp
    )


def test_a_host_key_mismatch_refuses_to_connect_before_logging_in(shell: SshServer) -> None:
    before = len(shell.invocations())
    log_size = shell.sshd_log.stat().st_size
    client = SshClient(target_for(shell, host_key=WRONG_FP), lambda: shell.client_key, connect_attempts=3)
    with pytest.raises(ThumbprintMismatchError) as exc:
        client.run(cmd.get_allvms())
    assert exc.value.code == "ssh_host_key_mismatch" and exc.value.exit_code == 6
    assert shell.host_key_fingerprint() in exc.value.message and WRONG_FP in exc.value.message
    assert client.logins == 0 and len(shell.invocations()) == before  # nothing ran
    time.sleep(0.2)  # let sshd write its log line
    assert "Accepted publickey" not in shell.sshd_log.read_bytes()[log_size:].decode()  # no key was offered


def test_a_wrong_key_is_refused_without_retrying_and_without_showing_the_key(
    shell: SshServer, tmp_path: Path
) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    key_text = (tmp_path / "other").read_text()
    calls = []

    def secret() -> str:
        calls.append(1)
        return key_text

    client = SshClient(target_for(shell), secret, connect_attempts=3, backoff_s=0.01)
    with pytest.raises(AuthenticationError) as exc:
        client.run(cmd.get_allvms())
    assert len(calls) == 1  # a refused login is not retried
    assert key_text.splitlines()[1] not in exc.value.message


def test_ssh_down_is_unreachable_after_retries_with_backoff(shell: SshServer) -> None:
    client = SshClient(
        target_for(shell, port=closed_port()), lambda: shell.client_key, connect_attempts=3, backoff_s=0.1
    )
    start = time.monotonic()
    with pytest.raises(HostUnreachableError) as exc:
        client.run(cmd.get_allvms())
    assert time.monotonic() - start >= 0.3  # waited 0.1 + 0.2 between the three attempts
    assert exc.value.exit_code == 6 and "unreachable" in exc.value.message


def test_a_lost_connection_is_reopened_before_the_next_command(ssh_client: SshClient) -> None:
    ssh_client.run(cmd.get_allvms())
    assert ssh_client._client is not None
    transport = ssh_client._client.get_transport()
    assert transport is not None
    transport.close()  # the network dropped it
    assert ssh_client.run(cmd.get_allvms()).exit_status == 0
    assert ssh_client.logins == 2


def test_a_non_zero_exit_raises_with_the_command_and_stderr_tail(
    ssh_client: SshClient, shell: SshServer
) -> None:
    shell.configure(
        faults={"vim-cmd vmsvc/power.on": {"exit": 3, "stderr": "noise\n" * 500 + "the real reason\n"}}
    )
    with pytest.raises(OperationError) as exc:
        ssh_client.run(cmd.power(5, "on"))
    err = exc.value
    assert err.code == "ssh_command_failed" and err.details["exit_status"] == 3
    assert err.details["command"] == "vim-cmd vmsvc/power.on 5"
    assert err.message.endswith("the real reason") and len(err.details["stderr"]) <= 2000
    assert ssh_client.run(cmd.power(5, "on"), check=False).exit_status == 3


def test_a_hung_command_is_killed_at_its_timeout(ssh_client: SshClient, shell: SshServer) -> None:
    shell.configure(hang={"vim-cmd vmsvc/power.off": 60})
    start = time.monotonic()
    with pytest.raises(TimeoutExpiredError) as exc:
        ssh_client.run(cmd.power(5, "off"), timeout=1.5)
    assert 1.5 <= time.monotonic() - start < 10
    pid = exc.value.details["pid"]
    logged = [i for i in shell.invocations() if i["argv"] == ["vmsvc/power.off", "5"]]
    assert logged[-1]["pid"] == pid  # the pid the client learned is the emulator's own
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"process {pid} still runs after the timeout")
    assert ssh_client.run(cmd.get_allvms()).exit_status == 0  # the connection is still good


@pytest.mark.parametrize(
    "name",
    ["it's", 'say "hi"', "$(touch {tmp}/pwned)", "a; touch {tmp}/pwned2", "new\nline", "`touch {tmp}/x`"],
)
def test_hostile_names_reach_the_tool_as_one_literal_argument(
    ssh_client: SshClient, shell: SshServer, tmp_path: Path, name: str
) -> None:
    name = name.format(tmp=tmp_path)
    ssh_client.run(cmd.snapshot_create(99, name, name, memory=False, quiesce=False), check=False)
    logged = [i for i in shell.invocations() if i["tool"] == "vim-cmd"][-1]
    assert logged["argv"] == ["vmsvc/snapshot.create", "99", name, name, "0", "0"]
    assert list(tmp_path.iterdir()) == []  # nothing the name spelled was executed


def test_files_over_sftp(ssh_client: SshClient, shell: SshServer, free_sim_dir: Path) -> None:
    folder = "/vmfs/volumes/LocalDS_0/it's a $(dir); x"
    files.make_directory(ssh_client, folder)
    with pytest.raises(ConflictError):
        files.make_directory(ssh_client, folder)
    data = b'displayName = "x"\n' + b"guestinfo.big = " + b"A" * 200_000 + b"\n"
    digest = files.write_file(ssh_client, f"{folder}/x.vmx", data)
    assert len(digest) == 64
    assert (free_sim_dir / "it's a $(dir); x" / "x.vmx").read_bytes() == data
    assert files.read_file(ssh_client, f"{folder}/x.vmx") == data
    with pytest.raises(ConflictError):
        files.write_file(ssh_client, f"{folder}/x.vmx", b"other")
    assert files.read_file(ssh_client, f"{folder}/x.vmx") == data  # never overwritten
    with pytest.raises(NotFoundError):
        files.read_file(ssh_client, f"{folder}/missing.vmx")
    with pytest.raises(InvalidInputError):
        files.remove_tree(ssh_client, "/vmfs/volumes/LocalDS_0")
    with pytest.raises(InvalidInputError):
        files.read_file(ssh_client, "/etc/passwd")
    assert files.remove_tree(ssh_client, folder) == 1
    assert not files.exists(ssh_client, folder)
    assert files.remove_tree(ssh_client, folder) == 0  # already gone is fine
    ops = [i["argv"][0] for i in shell.invocations() if i["tool"] == "sftp"]
    assert {"mkdir", "open", "posix-rename", "remove", "rmdir"} <= set(ops)


def test_password_login(password_server: tuple[int, str]) -> None:
    port, fp = password_server
    target = SshTarget(
        host="pw", address="127.0.0.1", port=port, username="root", host_key=fp, auth="password"
    )
    client = SshClient(target, lambda: "correct horse", connect_attempts=1)
    assert client.run(cmd.get_allvms()).stdout == "ran: vim-cmd vmsvc/getallvms\n"
    client.close()
    wrong = SshClient(target, lambda: "wrong horse battery", connect_attempts=3, backoff_s=0.01)
    with pytest.raises(AuthenticationError) as exc:
        wrong.run(cmd.get_allvms())
    assert "wrong horse battery" not in exc.value.message and "correct horse" not in exc.value.message
