"""A real OpenSSH server playing an ESXi host's shell, for the SSH route's tests.

:meth:`SshServer.start` runs Debian's ``/usr/sbin/sshd`` as the current user
on a free loopback port, with everything in a temp directory: its own host
keys, its own ``sshd_config`` (``-f``; ``-D -e`` keeps it in the foreground,
logging to a file), an ``authorized_keys`` holding a fresh client key, and no
PAM (``UsePAM no``; ``StrictModes no`` because the temp dir is not the
user's home). Nothing of the system's SSH configuration is read or changed.

Sessions get ``SetEnv PATH=<bin>:/usr/bin:/bin HOME=<home>
CESO_ESXI_SHELL_CONFIG=<json>``: ``<bin>`` holds ``vim-cmd``, ``vmkfstools``,
``esxcli``, ``cat`` and ``dd`` (wrappers around tests/support/esxi_shell) and the SFTP
subsystem is the emulated one, so ``/vmfs/volumes/<ds>`` is the simulator's
datastore directory for commands and file transfers alike. A fresh HOME keeps
the user's own shell start-up files out of the way.

Only public-key login is offered: password login through OpenSSH would need
the account's real password (UsePAM no reads /etc/shadow), which a test must
not set; password auth is tested against a paramiko server instead
(tests/ssh/test_client.py).

Raises SshServerError if sshd is missing or does not come up: callers fail
the test run, never skip.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.simulator import PASSWORD, USER, SimulatorHost

__all__ = ["SSHD", "SshServer", "SshServerError"]

SSHD = Path("/usr/sbin/sshd")
EMULATORS = Path(__file__).resolve().parent / "esxi_shell"
TOOLS = {
    "vim-cmd": "vim_cmd.py",
    "vmkfstools": "vmkfstools.py",
    "esxcli": "esxcli.py",
    "cat": "cat.py",
    "dd": "dd.py",
    "ceso-sftp-server": "sftp_server.py",
}


class SshServerError(RuntimeError):
    """sshd could not be started."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, kind: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)


class SshServer:
    """One running sshd; use :meth:`start`, then :meth:`stop`."""

    def __init__(self, workdir: Path, proc: subprocess.Popen[bytes], port: int) -> None:
        self.workdir = workdir
        self.proc = proc
        self.port = port
        self.user = getpass.getuser()
        self.client_key = (workdir / "client_key").read_text()
        self.config_path = workdir / "esxi-shell.json"
        self.log_path = workdir / "esxi-shell.log"
        self.sshd_log = workdir / "sshd.log"
        self._base_config: dict[str, Any] = json.loads(self.config_path.read_text())

    @classmethod
    def start(cls, sim: SimulatorHost) -> SshServer:
        if not os.access(SSHD, os.X_OK):
            raise SshServerError(
                f"{SSHD} is missing: install Debian's openssh-server (ops/dev/setup.sh does)"
            )
        workdir = Path(tempfile.mkdtemp(prefix="ceso-sshd-"))
        workdir.chmod(0o755)
        bin_dir, home = workdir / "bin", workdir / "home"
        bin_dir.mkdir()
        home.mkdir()
        for tool, script in TOOLS.items():
            wrapper = bin_dir / tool
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{EMULATORS / script}" "$@"\n')
            wrapper.chmod(0o755)
        for kind in ("ed25519", "rsa"):
            _keygen(workdir / f"ssh_host_{kind}_key", kind)
        _keygen(workdir / "client_key", "ed25519")
        shutil.copy(workdir / "client_key.pub", workdir / "authorized_keys")
        config = {
            "sim_url": sim.url,
            "user": USER,
            "password": PASSWORD,
            "datastores": {"LocalDS_0": str(sim.datastore_dir())},
            "log": str(workdir / "esxi-shell.log"),
            "state": str(workdir / "esxi-shell-state.json"),
        }
        (workdir / "esxi-shell.json").write_text(json.dumps(config))
        (workdir / "esxi-shell.log").touch()
        if os.geteuid() == 0:
            # As root, sshd insists on its privilege-separation directory; Debian's service unit
            # creates this (empty, root-owned) directory at boot, so this only fills in for it.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        last_error = ""
        for _ in range(3):  # a port picked free can be taken before sshd binds it
            port = _free_port()
            (workdir / "sshd_config").write_text(cls._sshd_config(workdir, port))
            log = open(workdir / "sshd.log", "ab")  # noqa: SIM115 - sshd keeps writing to it
            proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(workdir / "sshd_config")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
            log.close()
            if cls._wait_listening(proc, port):
                return cls(workdir, proc, port)
            last_error = (workdir / "sshd.log").read_text(errors="replace")[-2000:]
            cls._terminate(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        raise SshServerError(f"sshd did not start: {last_error}")

    @staticmethod
    def _sshd_config(workdir: Path, port: int) -> str:
        root_login = "PermitRootLogin prohibit-password\n" if os.geteuid() == 0 else ""
        return (
            f"Port {port}\nListenAddress 127.0.0.1\n"
            f"HostKey {workdir}/ssh_host_ed25519_key\nHostKey {workdir}/ssh_host_rsa_key\n"
            "PidFile none\nUsePAM no\nStrictModes no\n" + root_login + "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"AuthorizedKeysFile {workdir}/authorized_keys\n"
            f"SetEnv PATH={workdir}/bin:/usr/bin:/bin HOME={workdir}/home "
            f"CESO_ESXI_SHELL_CONFIG={workdir}/esxi-shell.json\n"
            f"Subsystem sftp {workdir}/bin/ceso-sftp-server\n"
            "MaxSessions 64\nMaxStartups 64:30:128\nLogLevel VERBOSE\n"
        )

    @staticmethod
    def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- what tests use ------------------------------------------------------------------
    def host_key_fingerprint(self) -> str:
        """``SHA256:...`` of the Ed25519 host key (the one paramiko negotiates first), via ssh-keygen."""
        out = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.workdir / "ssh_host_ed25519_key.pub")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()[1]

    def configure(self, **changes: Any) -> None:
        """Change the emulators' configuration (faults, hangs, questions) until :meth:`reset`."""
        data = json.loads(self.config_path.read_text())
        data.update(changes)
        self.config_path.write_text(json.dumps(data))

    def reset(self) -> None:
        self.config_path.write_text(json.dumps(self._base_config))

    def invocations(self) -> list[dict[str, Any]]:
        """Every emulator invocation so far, oldest first (``tool``, ``argv``, ``pid``)."""
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        self._terminate(self.proc)
        shutil.rmtree(self.workdir, ignore_errors=True)
