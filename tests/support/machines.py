"""Run an installation guide's shell blocks on "machines" of a test, and start the systemd units
they enable as processes, the way systemd would.

A machine is a directory whose ``etc/ceso``, ``etc/systemd/system``, ``opt/ceso``,
``var/lib/ceso``, ``srv`` and ``root`` are bind-mounted over the real paths in a private mount
namespace (``unshare --mount``) for every command and process of that machine, so the guide's
commands and the units run unchanged, with their real absolute paths, and two machines do not
see each other's files. They share the network (PostgreSQL, Redis and the ESXi host on
loopback), as machines of one site do. Commands that need a user database or a system manager
run through shims on ``PATH``: ``useradd`` (nothing to do), ``install -o/-g``, ``chown`` and
``chgrp`` (ownership dropped: everything belongs to the test's user), ``sudo -u ceso CMD`` (runs
CMD), ``systemctl enable --now`` (records the units; :meth:`Machine.start_enabled` starts them)
and ``scp FILE machine-NAME:PATH`` (copies into that machine). Everything else is real.

The mount points are created on the real machine if missing (empty directories).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: Real path → the machine directory's subdirectory bound over it.
MOUNTS = {
    "/etc/ceso": "etc/ceso",
    "/etc/systemd/system": "etc/systemd/system",
    "/opt/ceso": "opt/ceso",
    "/var/lib/ceso": "var/lib/ceso",
    "/srv": "srv",
    "/root": "root",
}

_SHIMS = {
    "useradd": "exit 0\n",
    "chown": "exit 0\n",
    "chgrp": "exit 0\n",
    "install": (
        'args=(); while [ $# -gt 0 ]; do case "$1" in -o|-g) shift 2;; *) args+=("$1"); shift;; esac; done\n'
        'exec /usr/bin/install "${args[@]}"\n'
    ),
    "sudo": '[ "$1" = "-u" ] && shift 2\nexec "$@"\n',
    "systemctl": (
        'case "$1" in\n'
        "  daemon-reload) exit 0;;\n"
        '  enable) shift; [ "$1" = "--now" ] && shift; for u in "$@"; do echo "$u" >> "$MACHINE_DIR/.enabled"; done;;\n'
        '  *) echo "systemctl shim: $*" >&2; exit 1;;\n'
        "esac\n"
    ),
    "scp": (
        '[ "$1" = "-p" ] && shift\n'
        'name="${2%%:*}"; dest="${2#*:}"\n'
        'case "$dest" in /etc/ceso/*) sub="etc/ceso/${dest#/etc/ceso/}";; *) echo "scp shim: $dest" >&2; exit 1;; esac\n'
        'exec cp -p "$1" "$MACHINES_DIR/${name#machine-}/$sub"\n'
    ),
}


def guide_blocks(markdown: str) -> dict[str, str]:
    """The shell blocks of ``markdown`` that follow a ``<!-- deploy: NAME -->`` line, by NAME."""
    found = re.findall(r"<!-- deploy: ([^>]+?) -->\s*```sh\n(.*?)```", markdown, flags=re.S)
    return dict(found)


@dataclass
class Machine:
    """One machine: its directory (``root``), under ``machines_dir/<name>``, and its unit processes."""

    name: str
    machines_dir: Path
    #: Directories every machine mounts at the same place (an NFS export): real path → directory.
    shared: dict[str, Path] = field(default_factory=dict)
    #: The machine's own directories: real path → subdirectory of ``root`` (a container: none).
    mounts: dict[str, str] = field(default_factory=lambda: dict(MOUNTS))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.machines_dir / self.name

    def __post_init__(self) -> None:
        for real, sub in self.mounts.items():
            Path(real).mkdir(parents=True, exist_ok=True)  # the mount point on the real machine
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for real, directory in self.shared.items():
            directory.mkdir(parents=True, exist_ok=True)
            try:
                self.file(real).mkdir(parents=True, exist_ok=True)  # its mount point on this machine
            except ValueError:
                Path(real).mkdir(parents=True, exist_ok=True)  # not under a machine's own mount
        shims = self.root / ".shims"
        shims.mkdir(parents=True, exist_ok=True)
        for name, body in _SHIMS.items():
            (shims / name).write_text("#!/bin/bash\nset -euo pipefail\n" + body)
            (shims / name).chmod(0o755)

    def file(self, real: str) -> Path:
        """Where the machine's ``real`` path lives in the test's directory."""
        for prefix, sub in self.mounts.items():
            if real == prefix or real.startswith(prefix + "/"):
                return self.root / sub / real[len(prefix) :].lstrip("/")
        raise ValueError(f"{real} is not on a machine's own mounts")

    def _inside(self, argv: list[str], *, cwd: str | None = None) -> list[str]:
        binds = "".join(
            f"mount --bind {shlex.quote(str(self.root / sub))} {real}\n" for real, sub in self.mounts.items()
        )
        binds += "".join(
            f"mount --bind {shlex.quote(str(d))} {shlex.quote(real)}\n" for real, d in self.shared.items()
        )
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "bash",
            "-c",
            binds + (f"cd {shlex.quote(cwd)}\n" if cwd else "") + 'exec "$@"',
            "--",
            *argv,
        ]

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.root / '.shims'}:{os.environ['PATH']}",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "MACHINE_DIR": str(self.root),
            "MACHINES_DIR": str(self.machines_dir),
        }

    def run(self, script: str, *, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a shell script (a guide block, ``set -euo pipefail``) on this machine."""
        return subprocess.run(
            self._inside(["bash", "-c", "set -euo pipefail\n" + script]),
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _unit(self, unit_file: Path, instance: str) -> tuple[list[str], dict[str, str]]:
        """ExecStart's argv and the environment systemd gives the unit's process (files are read
        through this machine's directory, as the unit would see them)."""
        text = unit_file.read_text().replace("%i", instance)
        # PrivateTmp: the unit's processes share no /tmp (and so no socket) with the operator.
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/var/lib/ceso",
            "XDG_RUNTIME_DIR": tempfile.mkdtemp(prefix=f"ceso-{self.name}-"),
        }
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key == "EnvironmentFile":
                path = self.file(value.lstrip("-"))
                if not path.exists() and value.startswith("-"):
                    continue
                for raw in path.read_text().splitlines():
                    if raw.strip() and not raw.lstrip().startswith("#"):
                        name, _, val = raw.partition("=")
                        env[name.strip()] = val.strip()
            elif key == "LoadCredential":
                name, _, source = value.partition(":")
                credentials = Path(env["XDG_RUNTIME_DIR"]) / "credentials"
                credentials.mkdir(mode=0o700, exist_ok=True)
                (credentials / name).write_bytes(self.file(source).read_bytes())
                (credentials / name).chmod(0o400)
                env["CREDENTIALS_DIRECTORY"] = str(credentials)
        (exec_start,) = re.findall(r"^ExecStart=(.*)$", text, flags=re.M)
        return shlex.split(exec_start), env

    def start_enabled(self) -> list[str]:
        """Start every unit that ``systemctl enable --now`` asked for; return their names."""
        enabled = self.root / ".enabled"
        names = enabled.read_text().split() if enabled.exists() else []
        enabled.unlink(missing_ok=True)
        for unit in names:
            base, _, instance = unit.removesuffix(".service").partition("@")
            unit_file = self.file(
                f"/etc/systemd/system/{base}@.service" if instance else f"/etc/systemd/system/{base}.service"
            )
            argv, env = self._unit(unit_file, instance)
            workdir = re.search(r"^WorkingDirectory=(.*)$", unit_file.read_text(), flags=re.M)
            self.start(unit, argv, env, cwd=workdir.group(1) if workdir else None)
        return names

    def start(self, name: str, argv: list[str], env: dict[str, str], *, cwd: str | None = None) -> None:
        """Start ``argv`` on this machine as process ``name`` (its output in ``<root>/<name>.log``)."""
        log = (self.root / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            self._inside(argv, cwd=cwd), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self, unit: str) -> str:
        return (self.root / f"{unit}.log").read_text(errors="replace")

    def kill(self, unit: str) -> None:
        os.killpg(self.processes[unit].pid, signal.SIGKILL)
        self.processes[unit].wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
