"""The README's first quick-start command, run exactly as written: ``./ops/dev/quickstart.sh``.

It sets up (idempotent), starts a simulated ESXi host and a worker, imports the template, creates
and clones a VM, and stops what it started. The test gives it its own scratch data dir and then
reads that database itself: every job the quick start submitted must have succeeded.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def test_the_readme_names_this_command() -> None:
    assert "./ops/dev/quickstart.sh" in README.read_text()


@pytest.mark.slow
def test_quickstart_runs_the_main_job_as_the_readme_says(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # As a user's shell would have it: no CESO_* settings of the test session leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CESO_")}
    env["CESO_DATA_DIR"] = str(data_dir)
    proc = subprocess.run(
        ["./ops/dev/quickstart.sh"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "quick start done" in proc.stdout
    assert "web-01 on esxi-sim: poweredOn" in proc.stdout

    database = data_dir / "ceso.db"  # the built-in default: SQLite in the data dir
    assert database.is_file(), sorted(p.name for p in data_dir.iterdir())
    with sqlite3.connect(database) as db:
        jobs = dict(db.execute("SELECT kind, state FROM jobs").fetchall())
    assert jobs == {
        "host.ping": "succeeded",
        "template.import": "succeeded",
        "vm.create": "succeeded",
        "vm.clone": "succeeded",
    }, jobs
