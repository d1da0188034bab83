"""Shell completion: commands and options from click, host/VM/template names from SQL and the last
``vm list`` — run as the shell runs it, through the ``ceso`` script with ``_CESO_COMPLETE``."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import CESO_BIN, Cli, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, make_template


def _complete(env: dict[str, str], line: str) -> list[str]:
    """What bash would offer for ``line`` (its last word being completed)."""
    words = line.split(" ")
    proc = subprocess.run(
        [str(CESO_BIN)],
        env={**os.environ, **env, "_CESO_COMPLETE": "bash_complete", "COMP_WORDS": line,
             "COMP_CWORD": str(len(words) - 1)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [entry.partition(",")[2] for entry in proc.stdout.splitlines() if entry]


def test_names_complete_from_sql_and_the_last_listing(
    cli: Cli, ceso_env: dict[str, str], sim: SimulatorHost, registered_host: str
) -> None:
    si = sim.connect()
    group = unique("cmp")
    vms = [f"{group}-web", f"{group}-db"]
    for name in vms:
        make_template(si, sim.datastore_dir(), name, b"x")
    try:
        assert _complete(ceso_env, "ceso vm pow") == ["power"]
        assert "--json" in _complete(ceso_env, "ceso vm power on x --js")  # global options after the command
        assert _complete(ceso_env, f"ceso host ping {registered_host[:6]}") == [registered_host]
        assert _complete(ceso_env, f"ceso vm info {group}") == []  # no listing yet: no host is asked
        assert cli("vm", "list", "--host", registered_host).exit_code == 0
        assert _complete(ceso_env, f"ceso vm power on {group}") == sorted(vms)
        assert _complete(ceso_env, f"ceso vm info {group}-w") == [f"{group}-web"]
        assert _complete(ceso_env, f"ceso vm list --host {registered_host[:6]}") == [registered_host]
        assert cli("template", "add", vms[1], "--host", registered_host).exit_code == 0
        assert _complete(ceso_env, f"ceso vm create x --template {group}") == [vms[1]]
        assert _complete(ceso_env, f"ceso vm create {group}") == []  # a new VM's name is not completed
    finally:
        cli("template", "remove", vms[1])
        for name in vms:
            destroy_vm(si, name)


def test_completion_prints_each_shell_s_code(cli: Cli) -> None:
    for shell, marker in (
        ("bash", "complete -o nosort -F"),
        ("zsh", "compdef"),
        ("fish", "complete --no-files"),
    ):
        done = cli("completion", shell)
        assert done.exit_code == 0 and "_CESO_COMPLETE" in done.stdout and marker in done.stdout, shell
    assert cli("completion", "tcsh").exit_code == 2
