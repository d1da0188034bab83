"""Real servers on loopback for target tests: OpenSSH's sshd (SFTP) and moto's S3-compatible server.

Both are started in their own temp directories on free ports and stopped by their fixtures; a
missing binary fails the test (no skips).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(
        f"server not listening on {port} after {timeout}s: {log.read_text(errors='replace')[-2000:]}"
    )


@dataclass
class Sshd:
    proc: subprocess.Popen[bytes]
    port: int
    user: str
    root: Path
    client_key: Path
    host_key_pub: Path

    def fingerprint(self) -> str:
        out = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.host_key_pub)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()[1]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def start_sshd(tmp: Path) -> Sshd:
    """sshd -D -e on a free loopback port, key auth only, for the current user; files under ``tmp``."""
    if not SSHD.exists() or not shutil.which("ssh-keygen"):
        raise RuntimeError("openssh-server is required (ops/dev/setup.sh installs it)")
    tmp.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o700)
    host_key, client_key = tmp / "host_ed25519", tmp / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
    root = tmp / "sftp-root"
    root.mkdir()
    port = free_port()
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory sshd insists on
    config = tmp / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {tmp / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\n"
    )
    log = tmp / "sshd.log"
    proc = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    _wait_port(port, proc, log)
    import getpass

    return Sshd(proc, port, getpass.getuser(), root, client_key, Path(f"{host_key}.pub"))


@dataclass
class S3Server:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def make_bucket(self, name: str) -> None:
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.create_bucket(Bucket=name)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def start_s3(tmp: Path) -> S3Server:
    """moto's S3-compatible server (installed with the dev extras) on a free loopback port."""
    binary = Path(sys.executable).with_name("moto_server")
    if not binary.exists():
        raise RuntimeError("moto[server] is required: install the dev extras (ops/dev/setup.sh)")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = tmp / "moto.log"
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    _wait_port(port, proc, log)
    return S3Server(proc, port)
