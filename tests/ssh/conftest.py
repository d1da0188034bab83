"""Fixtures of the SSH route's tests: a free-licensed simulated host, a real sshd in front of it, clients.

The sshd and the simulator are shared by the session; every test gets the
emulators' configuration reset (no fault or hang left over). A missing sshd
fails the run (SshServerError), it never skips.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest

from ceso.ssh.client import SshClient
from ceso.ssh.keys import fingerprint
from ceso.ssh.target import SshTarget
from tests.conftest import unique
from tests.support.simulator import PASSWORD, USER, SimulatorHost
from tests.support.sshd import EMULATORS, SshServer, SshServerError

TEMPLATE_VMX = """.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "13"
displayName = "{name}"
guestOS = "ubuntu-64"
numvcpus = "2"
memSize = "2048"
nvram = "{name}.nvram"
pciBridge0.present = "TRUE"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.deviceType = "scsi-hardDisk"
scsi0:0.fileName = "{name}.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "static"
ethernet0.address = "{mac}"
uuid.bios = "56 4d 11 22 33 44 55 66-77 88 99 aa bb cc dd {tail}"
"""

DESCRIPTOR = """# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description
RW {sectors} VMFS "{name}-flat.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.thinProvisioned = "1"
ddb.uuid = "60 00 C2 9b 52 6e 4f 5a-8c 72 b7 3e 2c 5f 3a {tail}"
ddb.virtualHWVersion = "13"
"""


@pytest.fixture(scope="session")
def free_sim() -> Iterator[SimulatorHost]:
    """A simulated ESXi host with the free license: its API refuses every write."""
    host = SimulatorHost.start(free_license=True)
    yield host
    host.stop()


@pytest.fixture(scope="session")
def sshd(free_sim: SimulatorHost) -> Iterator[SshServer]:
    try:
        server = SshServer.start(free_sim)
    except SshServerError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def shell(sshd: SshServer) -> Iterator[SshServer]:
    """The sshd with the emulators' configuration reset after the test."""
    yield sshd
    sshd.reset()


def target_for(server: SshServer, *, host_key: str | None = None, port: int | None = None) -> SshTarget:
    return SshTarget(
        host="esx-test",
        address="127.0.0.1",
        port=port or server.port,
        username=server.user,
        host_key=host_key or server.host_key_fingerprint(),
        auth="key",
    )


@pytest.fixture
def ssh_client(shell: SshServer) -> Iterator[SshClient]:
    client = SshClient(target_for(shell), lambda: shell.client_key, connect_attempts=1)
    yield client
    client.close()


def local_si(sim: SimulatorHost) -> Any:
    """A session on the free simulator as its local shell (writes allowed), for test set-up only."""
    from pyVmomi import SoapStubAdapter, vim

    stub = SoapStubAdapter(url=sim.url, customHeaders={"X-Ceso-Local-Shell": "1"})
    si = vim.ServiceInstance("ServiceInstance", stub)
    si.content.sessionManager.Login(USER, PASSWORD)
    return si


def emulate(server: SshServer, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an emulator locally, as the host's own shell would (set-up, not the code under test)."""
    script = {"vim-cmd": "vim_cmd.py", "vmkfstools": "vmkfstools.py", "esxcli": "esxcli.py"}[tool]
    env = {**os.environ, "CESO_ESXI_SHELL_CONFIG": str(server.config_path)}
    return subprocess.run(
        [sys.executable, str(EMULATORS / script), *args], capture_output=True, text=True, env=env, check=False
    )


def make_ssh_template(
    server: SshServer, sim: SimulatorHost, name: str, payload: bytes, *, mac: str, vmx: str = TEMPLATE_VMX
) -> int:
    """A VM made on the host the way an operator would: .vmx, descriptor and flat file, then registered.

    Returns its VM id. The disk is 16 GiB thin and its first bytes are ``payload``; ``vmx`` is the
    .vmx text with ``{name}``, ``{mac}`` and ``{tail}`` (a byte of the BIOS UUID) to fill in.
    """
    folder = sim.datastore_dir() / name
    folder.mkdir()
    tail = f"{len(name) % 256:02x}"
    (folder / f"{name}.vmx").write_text(vmx.format(name=name, mac=mac, tail=tail))
    (folder / f"{name}.vmdk").write_text(DESCRIPTOR.format(name=name, sectors=16 * 2**21, tail=tail))
    (folder / f"{name}-flat.vmdk").write_bytes(payload)
    done = emulate(server, "vim-cmd", "solo/registervm", f"/vmfs/volumes/LocalDS_0/{name}/{name}.vmx")
    assert done.returncode == 0, done.stdout + done.stderr
    # Simulator only: VMware Tools "installed" is faked with an extraConfig key (see tests/support/vms.py).
    from pyVmomi import vim

    vm = next(v for v in _vms(local_si(sim)) if v.name == name)
    option = vim.option.OptionValue(key="SET.guest.toolsStatus", value="toolsNotRunning")
    task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[option]))
    assert task.info.state == "success"
    return int(done.stdout.strip())


def datastore_dir(sim: SimulatorHost) -> Path:
    return sim.datastore_dir()


@pytest.fixture
def free_sim_dir(free_sim: SimulatorHost) -> Path:
    return free_sim.datastore_dir()


# -- end to end: ceso with a host on the SSH route ------------------------------------------------------
TASK_TIMEOUT_S = 15


@dataclass
class SshBed:
    """A free-licensed host registered in ceso with an SSH login, a template on it and a worker."""

    host: str
    template: str
    payload: bytes
    sim: SimulatorHost
    shell: SshServer
    key_file: Path
    worker: Any

    @property
    def datastore_dir(self) -> Path:
        return self.sim.datastore_dir()


def add_ssh_host(cli: Any, sim: SimulatorHost, shell: SshServer, key_file: Path, *extra: str) -> Any:
    return cli(
        "--json", "host", "add", unique("ssh"), "--url", sim.url, "--user", "root", "--password-stdin",
        "--ssh-user", shell.user, "--ssh-port", str(shell.port), "--ssh-key", str(key_file), *extra,
        input="pw\n",
    )  # fmt: skip


def register_ssh_host(cli: Any, sim: SimulatorHost, shell: SshServer, tmp_path: Path) -> tuple[str, Path]:
    """A host added with an SSH login (its key in ``tmp_path``, the host key pinned): (name, key file)."""
    key_file = tmp_path / "esxi_key"
    key_file.write_text(shell.client_key)
    key_file.chmod(0o600)
    added = add_ssh_host(cli, sim, shell, key_file, "--ssh-host-key", shell.host_key_fingerprint())
    assert added.exit_code == 0, added.stdout + added.stderr
    return str(added.json()["name"]), key_file


@pytest.fixture
def ssh_bed(
    cli: Any, free_sim: SimulatorHost, shell: SshServer, tmp_path: Path, start_worker: Any
) -> Iterator[SshBed]:
    host, key_file = register_ssh_host(cli, free_sim, shell, tmp_path)
    si = local_si(free_sim)
    before = {vm.name for vm in _vms(si)}
    template = unique("tmpl")
    payload = os.urandom(64 * 1024) + b"\0" * 65536 + b"ceso template bytes over ssh\n" * 100
    make_ssh_template(
        shell, free_sim, template, payload, mac=f"00:50:56:3e:{os.urandom(1).hex()}:{os.urandom(1).hex()}"
    )
    tmpl = cli("--json", "template", "add", template, "--host", host)
    assert tmpl.exit_code == 0 and tmpl.json()["status"] == "passed", tmpl.stdout + tmpl.stderr
    # A short task timeout so that a hung command (tests inject some) fails the job within seconds.
    worker = start_worker(host, concurrency=1, env={"CESO_ESXI_TASK_TIMEOUT_S": str(TASK_TIMEOUT_S)})
    yield SshBed(host, template, payload, free_sim, shell, key_file, worker)
    for vm in _vms(si):
        if vm.name not in before:
            _destroy(vm)


def _vms(si: Any) -> list[Any]:
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.DestroyView()


def _destroy(vm: Any) -> None:
    try:
        if vm.runtime.powerState != "poweredOff":
            vm.PowerOffVM_Task()
        vm.Destroy_Task()
    except Exception:  # best effort: a test may have left it half-gone on purpose
        pass


# -- password login, against a paramiko server (OpenSSH would need the account's real password) -------
class _PasswordServer(paramiko.ServerInterface):
    def __init__(self, password: str) -> None:
        self.password = password

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        ok = username == "root" and password == self.password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        def answer() -> None:
            time.sleep(0.1)  # let the "exec accepted" reply reach the client before any data
            channel.sendall(b"4242\nran: " + command.split(b"exec ", 1)[1] + b"\n")
            channel.send_exit_status(0)
            channel.close()

        threading.Thread(target=answer, daemon=True).start()
        return True


@pytest.fixture
def password_server() -> Iterator[tuple[int, str]]:
    host_key = paramiko.RSAKey.generate(2048)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    transports: list[paramiko.Transport] = []

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            transport = paramiko.Transport(conn)
            transport.add_server_key(host_key)
            transports.append(transport)
            try:
                # Returns once the key exchange is done; a client that only reads the host key
                # (ceso's host add does) hangs up here, which is fine.
                transport.start_server(server=_PasswordServer("correct horse"))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], fingerprint(host_key)
    stop.set()
    thread.join(2)
    listener.close()
    for transport in transports:
        transport.close()
