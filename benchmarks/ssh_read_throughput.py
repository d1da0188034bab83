"""Reading a disk over SSH for a backup on a free-licensed host: which data path, and how fast.

    .venv/bin/python benchmarks/ssh_read_throughput.py [--size-mib 1024] [--runs 3]

One flat file (1/3 random, 1/3 zeros, 1/3 text, as benchmarks/backup_throughput.py) on a
loopback OpenSSH sshd (its own host keys and config; ``cat`` is the ESXi shell emulator's,
which maps ``/vmfs/volumes/bench/`` and becomes ``/bin/cat``; SFTP is OpenSSH's ``internal-sftp``,
as ESXi serves OpenSSH's sftp-server). Timed, ``--runs`` times each, in turn:

* baseline: ``ssh host cat FILE | zstd -T0 -3 | sha256sum`` with OpenSSH's own client;
* ceso, exec stream: :class:`ceso.ssh.stream.SshFileReader` (``cat`` on a paramiko exec channel)
  through :func:`ceso.backup.pipeline.store_stream` (raw sha256, zstd level 3 on every core,
  stored sha256) into /dev/null — what ``backup create`` does per disk on the SSH route;
* ceso, SFTP: paramiko's ``SFTPFile`` with ``prefetch`` (pipelined reads) through the same pipeline;
* the transports alone (no compression): ``ssh host cat FILE > /dev/null``, the exec stream and
  SFTP into a raw sha256 only.

Prints each path's median seconds, MiB/s and its ratio to the baseline of the same run.
Needs sshd, ssh, zstd (ops/dev/setup.sh installs them).
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # before importing our own modules: no __pycache__ in the repo

from _support import exit_on_sigterm, log, median, print_table  # noqa: E402
from backup_throughput import write_disk  # noqa: E402

from tests.support.sshd import EMULATORS, SSHD, SshServer  # noqa: E402

MIB = 1 << 20


def start_sshd(work: Path, datastore: Path) -> tuple[subprocess.Popen[bytes], int]:
    """sshd on a free port with the emulator's ``cat`` on PATH and OpenSSH's internal SFTP server."""
    bin_dir, home = work / "bin", work / "home"
    bin_dir.mkdir()
    home.mkdir()
    wrapper = bin_dir / "cat"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{EMULATORS / "cat.py"}" "$@"\n')
    wrapper.chmod(0o755)
    config = {
        "datastores": {"bench": str(datastore)},
        "log": str(work / "shell.log"),
        "state": str(work / "st"),
    }
    (work / "esxi-shell.json").write_text(json.dumps(config))
    for kind in ("ed25519", "rsa"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(work / f"ssh_host_{kind}_key")], check=True
        )
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "client_key")], check=True
    )
    shutil.copy(work / "client_key.pub", work / "authorized_keys")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    from tests.support.sshd import _free_port

    port = _free_port()
    text = SshServer._sshd_config(work, port)
    text = "\n".join(
        "Subsystem sftp internal-sftp" if line.startswith("Subsystem") else line for line in text.splitlines()
    )
    (work / "sshd_config").write_text(text + "\n")
    proc = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(work / "sshd_config")], stderr=subprocess.DEVNULL
    )
    if not SshServer._wait_listening(proc, port):
        raise SystemExit("sshd did not start")
    return proc, port


def shell(cmd: str) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


class SftpSource:
    """A paramiko SFTPFile with prefetch, as a readinto source."""

    def __init__(self, sftp: Any, path: str) -> None:
        self.fh = sftp.open(path, "rb")
        self.size = self.fh.stat().st_size
        self.fh.prefetch(self.size)

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.fh.read(len(buf))
        memoryview(buf)[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.fh.close()


def raw_only(source: Any) -> None:
    """The transport alone: read everything into a raw sha256."""
    digest = hashlib.sha256()
    buf = bytearray(2 << 20)
    while n := source.readinto(buf):
        digest.update(memoryview(buf)[:n])


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for tool in ("ssh", "zstd", "sha256sum"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is required (ops/dev/setup.sh installs it)")
    from ceso.backup.pipeline import store_stream
    from ceso.ssh.client import SshClient
    from ceso.ssh.keys import fingerprint
    from ceso.ssh.stream import SshFileReader
    from ceso.ssh.target import SshTarget

    work = Path(tempfile.mkdtemp(prefix="ceso-bench-ssh-"))
    work.chmod(0o755)
    datastore = work / "datastore"
    (datastore / "vm").mkdir(parents=True)
    flat = datastore / "vm" / "vm-flat.vmdk"
    size = args.size_mib * MIB
    log(f"writing a {args.size_mib} MiB disk")
    write_disk(flat, size)
    proc, port = start_sshd(work, datastore)
    try:
        import paramiko

        host_key = paramiko.Ed25519Key.from_private_key_file(str(work / "ssh_host_ed25519_key"))
        target = SshTarget(
            host="bench", address="127.0.0.1", port=port, username=getpass.getuser(),
            host_key=fingerprint(host_key), auth="key",
        )  # fmt: skip
        client = SshClient(target, (work / "client_key").read_text)
        remote = "/vmfs/volumes/bench/vm/vm-flat.vmdk"
        ssh = (
            f"ssh -q -p {port} -i {work / 'client_key'} -o StrictHostKeyChecking=no "
            f"-o UserKnownHostsFile=/dev/null -o BatchMode=yes {getpass.getuser()}@127.0.0.1"
        )
        ceso_null = open(os.devnull, "wb")  # noqa: SIM115

        def exec_stream(codec: str) -> Callable[[], float]:
            def run() -> float:
                start = time.perf_counter()
                reader = SshFileReader(client, remote, size=size)
                try:
                    if codec == "raw":
                        raw_only(reader)
                    else:
                        store_stream(reader, ceso_null, compression="zstd", level=3, threads=-1)
                finally:
                    reader.close()
                return time.perf_counter() - start

            return run

        def sftp(codec: str) -> Callable[[], float]:
            def run() -> float:
                start = time.perf_counter()
                source = SftpSource(client.sftp(), str(flat))
                try:
                    if codec == "raw":
                        raw_only(source)
                    else:
                        store_stream(source, ceso_null, compression="zstd", level=3, threads=-1)
                finally:
                    source.close()
                return time.perf_counter() - start

            return run

        paths: list[tuple[str, Callable[[], float]]] = [
            ("baseline: ssh cat | zstd -T0 -3 | sha256sum", lambda: shell(f"{ssh} cat {remote} | zstd -T0 -3 | sha256sum")),
            ("ceso exec stream (cat), zstd 3", exec_stream("zstd")),
            ("ceso SFTP with prefetch, zstd 3", sftp("zstd")),
            ("transport only: ssh cat > /dev/null", lambda: shell(f"{ssh} cat {remote}")),
            ("transport only: ceso exec stream, sha256", exec_stream("raw")),
            ("transport only: ceso SFTP prefetch, sha256", sftp("raw")),
        ]  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name, _ in paths}
        for run in range(args.runs):
            order = paths if run % 2 == 0 else list(reversed(paths))
            for name, fn in order:
                times[name].append(fn())
                log(f"run {run + 1}: {name}: {times[name][-1]:.2f} s")
        base = median(times[paths[0][0]])
        rows = []
        for name, _ in paths:
            m = median(times[name])
            rows.append([name.replace("|", "\\|"), f"{m:.2f}", f"{size / m / MIB:.0f}", f"{m / base:.2f}x"])
        print_table(
            f"Reading a {args.size_mib} MiB disk over loopback SSH (median of {args.runs}; "
            f"load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)",
            ["path", "seconds", "MiB/s", "vs baseline"],
            rows,
        )
        client.close()
        ceso_null.close()
    finally:
        SshServer._terminate(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
