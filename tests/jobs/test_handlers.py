"""The handler table: one function per job kind, named for it; only the worker side imports it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from ceso.jobs.kinds import JOB_KINDS
from ceso.operations.handlers import HANDLERS, handler_for


def test_every_kind_has_one_handler_named_for_it() -> None:
    assert set(HANDLERS) == set(JOB_KINDS)
    for kind, handler in HANDLERS.items():
        assert handler.__name__ == "run_" + kind.replace(".", "_"), kind
        assert handler.__module__ == "ceso.operations." + kind.replace(".", "_"), kind
        assert handler_for(kind) is handler


def test_an_unknown_kind_has_no_handler() -> None:
    from ceso.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"unknown job kind 'vm\.explode'"):
        handler_for("vm.explode")


_SUBMIT_PROBE = """
import atexit, sys
atexit.register(lambda: print("IMPORTED", sorted(
    m for m in sys.modules if m.startswith(("ceso.operations", "ceso.jobs.runner", "pyVmomi", "workers"))
), file=sys.stderr))
from ceso.cli import main
main()
"""


def test_submitting_a_job_from_the_cli_imports_no_handler(
    ceso_env: dict[str, str], registered_host: str, database_url: str
) -> None:
    """The CLI submits by kind name: the handlers and what they use stay out of its process."""
    proc = subprocess.run(
        [sys.executable, "-c", _SUBMIT_PROBE, "--json", "host", "ping", registered_host, "--no-wait"],
        capture_output=True,
        text=True,
        env={**ceso_env, "CESO_NO_CESOD": "1", "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    job_id = json.loads(proc.stdout)["id"]
    with sa.create_engine(database_url).connect() as conn:
        row = conn.execute(sa.text("SELECT kind, host, state FROM jobs WHERE id = :i"), {"i": job_id}).one()
    assert tuple(row) == ("host.ping", registered_host, "queued")
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("IMPORTED "))
    assert ast.literal_eval(line.removeprefix("IMPORTED ")) == []
