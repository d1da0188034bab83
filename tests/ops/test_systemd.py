"""ops/systemd: the unit examples pass `systemd-analyze verify` (no warnings), run commands that
exist, and are hardened."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.ops.prom import REPO
from tests.ops.test_compose import PENDING_COMMANDS, _parse_click, script_command

UNITS = REPO / "ops" / "systemd"
VENV_BIN = Path(sys.executable).parent
HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "CapabilityBoundingSet=",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter=@system-service",
)


def _units() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(UNITS.glob("*.service"))}


def test_the_four_units_exist_with_environment_files_and_hardening() -> None:
    units = _units()
    assert set(units) == {"ceso-worker@.service", "ceso-beat.service", "cesod.service", "ceso-flower.service"}
    for name, text in units.items():
        assert "EnvironmentFile=/etc/ceso/ceso.env" in text, name
        assert "User=ceso" in text and "Restart=on-failure" in text, name
        for option in HARDENING:
            assert option in text.splitlines(), (name, option)
    assert "ExecStart=/opt/ceso/bin/ceso worker --host %i" in units["ceso-worker@.service"]
    env = (UNITS / "ceso.env.example").read_text()
    # Secrets in SQL under the master key, which every unit loads as a systemd credential.
    assert "CESO_SECRET_STORE=sql" in env
    for name, text in units.items():
        assert "LoadCredential=ceso-master-key:/etc/ceso/master.key" in text.splitlines(), name
    settings = [line.split("=", 1)[0] for line in env.splitlines() if line and not line.startswith("#")]
    assert not [key for key in settings if "PASSWORD" in key], "a password in the example environment file"


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze not found (Debian's systemd package)")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    paths = []
    for name, original in _units().items():
        # The programs as installed in this venv instead of /opt/ceso.
        text = original.replace("/opt/ceso/bin/", f"{VENV_BIN}/")
        for program in PENDING_COMMANDS:
            assert program not in scripts, f"`{program}` exists now: remove it from PENDING_COMMANDS"
            text = text.replace(f"{VENV_BIN}/{program}", "/bin/true")
        path = tmp_path / name.replace("@.service", "@esxi-a.service")
        path.write_text(text)
        paths.append(str(path))
    proc = subprocess.run([analyze, "verify", *paths], capture_output=True, text=True, check=False)
    output = (proc.stdout + proc.stderr).strip()  # warnings (unknown keys, bad values) exit 0: none allowed
    assert proc.returncode == 0 and not output, output


def test_unit_commands_exist() -> None:
    from ceso.cli.root import cli

    for name, text in _units().items():
        (exec_start,) = re.findall(r"^ExecStart=(.*)$", text, flags=re.M)
        argv = exec_start.replace("%i", "esxi-a").split()
        program = Path(argv[0]).name
        if program == "ceso":
            _parse_click(cli, "ceso", argv[1:])
        elif program == "celery":
            # Only Flower runs through Celery's command; the scheduler is `ceso beat`.
            assert argv[1:4] == ["-A", "workers.app", "flower"], name
        elif program in PENDING_COMMANDS:
            continue
        else:
            _parse_click(script_command(program), program, argv[1:])


def test_verify_reports_a_broken_directive(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    unit = tmp_path / "broken.service"
    unit.write_text("[Service]\nExecStart=/bin/true\nRestrat=always\n")
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    assert "Restrat" in proc.stdout + proc.stderr
