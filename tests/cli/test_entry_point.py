"""The ``ceso`` script's quick exit: same statuses and output as ``main``, exit handlers still run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ceso.cli import QUICK_EXIT_PYTHONS
from tests.conftest import CESO_BIN, Cli
from tests.support.simulator import SimulatorHost
from tests.support.vms import read_property


def test_statuses_and_output_of_the_script(cli: Cli) -> None:
    ok = cli("--version", subprocess_=True)
    assert ok.exit_code == 0 and ok.stdout.startswith("ceso ")
    bad = cli("--json", "job", "status", "not-a-uuid", subprocess_=True)
    assert bad.exit_code == 2 and json.loads(bad.stdout)["error"]["code"] == "invalid_input"
    usage = cli("no-such-command", subprocess_=True)
    assert usage.exit_code == 2 and "No such command" in usage.stderr


def test_exit_handlers_run_pooled_sessions_log_out(
    cli: Cli, registered_host: str, sim: SimulatorHost
) -> None:
    si = sim.connect()
    manager = si.content.sessionManager
    before = {s.key for s in read_property(si, manager, "sessionList") or []}
    listed = cli("--json", "vm", "list", "--host", registered_host, subprocess_=True)
    assert listed.exit_code == 0, listed.stderr
    after = {s.key for s in read_property(si, manager, "sessionList") or []}
    assert after <= before, "the CLI's ESXi session was left open: its exit handler did not run"


def test_a_reader_that_goes_away_does_not_hang_or_crash(ceso_env: dict[str, str]) -> None:
    proc = subprocess.run(
        f"'{CESO_BIN}' --help | head -c 10",
        shell=True,
        check=False,
        capture_output=True,
        text=True,
        env=ceso_env,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout == "Usage: ces"


_QUICK_EXIT_PROBE = """
import atexit, pathlib, sys, threading, time
from ceso.cli import _quick_exit
out = pathlib.Path(sys.argv[1])
def late():
    time.sleep(0.3)
    with out.open("a") as fh:
        fh.write("thread\\n")
def handler():
    with out.open("a") as fh:
        fh.write("atexit\\n")
atexit.register(handler)
threading.Thread(target=late).start()
sys.stdout.write("buffered, no newline")
_quick_exit(3)
"""


def test_quick_exit_keeps_a_normal_exit_s_order_on_this_python(tmp_path: Path) -> None:
    # The quick exit repeats what the interpreter does before its teardown through two private
    # hooks; this pins that on the running Python. A version not listed must be checked first.
    assert sys.version_info[:2] in QUICK_EXIT_PYTHONS, f"check _quick_exit on Python {sys.version_info[:2]}"
    record = tmp_path / "order"
    proc = subprocess.run(
        [sys.executable, "-c", _QUICK_EXIT_PROBE, str(record)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "buffered, no newline"
    # The non-daemon thread is waited for, then the exit handlers run: a normal exit's order.
    assert record.read_text().splitlines() == ["thread", "atexit"]
