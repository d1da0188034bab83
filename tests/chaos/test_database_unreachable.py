"""PostgreSQL goes away while ``ceso vm create --wait`` follows its job: one clear line,
"database unreachable", its documented exit code (1), no traceback, and the job intact.

The database is reached through a TCP proxy that is cut; the shared server is never touched.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import CESO_BIN, Cli, unique
from tests.support.proxy import FaultProxy
from tests.support.vms import vm_names
from tests.vm.conftest import TemplateBed, bed  # noqa: F401  (the fixture)


@pytest.fixture
def pg_proxy() -> Iterator[FaultProxy]:
    proxy = FaultProxy(("127.0.0.1", 5432))
    yield proxy
    proxy.close()


@pytest.fixture
def database_url(pg_database: str, pg_proxy: FaultProxy) -> Iterator[str]:
    """This module's database: the session's PostgreSQL database, reached through the proxy."""
    from tests.conftest import _truncate

    _truncate(pg_database)
    yield pg_database.replace("127.0.0.1:5432", f"127.0.0.1:{pg_proxy.port}")


def _job_rows(direct_url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(direct_url)
    try:
        with engine.connect() as conn:
            return [(str(r[0]), str(r[1])) for r in conn.execute(sa.text("SELECT id, state FROM jobs"))]
    finally:
        engine.dispose()


@pytest.mark.parametrize("json_output", [False, True])
def test_wait_whose_database_goes_away(
    cli: Cli,
    bed: TemplateBed,  # noqa: F811  (the fixture imported above)
    ceso_env: dict[str, str],
    pg_database: str,
    pg_proxy: FaultProxy,
    json_output: bool,
) -> None:
    bed.worker.stop()  # the job stays queued: the CLI is still waiting when the database goes
    name = unique("web")
    args = [str(CESO_BIN), *(["--json"] if json_output else []), "vm", "create", name]
    args += ["--template", bed.template, "--no-power-on", "--wait", "--timeout", "120"]
    env: dict[str, Any] = {**__import__("os").environ, **ceso_env, "CESO_NO_CESOD": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _job_rows(pg_database):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the job was never recorded"
            time.sleep(0.1)
        time.sleep(0.5)  # the CLI is in its wait loop
        pg_proxy.cut()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, (stdout, stderr)
    for leak in ("Traceback", "OperationalError", "internal error", "SELECT", "sqlalchemy"):
        assert leak not in stdout + stderr, (stdout, stderr)
    if json_output:
        error = json.loads(stdout)["error"]
        assert error["code"] == "database_unreachable" and error["message"].startswith("database unreachable")
    else:
        # No worker runs here, so the CLI first warns that the job will wait for one.
        lines = [
            line for line in stderr.strip().splitlines() if not line.startswith("warning: no live worker")
        ]
        assert len(lines) == 1 and lines[0].startswith("error: database unreachable"), stderr
    # The job is intact in SQL (read directly, not through the proxy) and nothing reached the host.
    ((_, state),) = _job_rows(pg_database)
    assert state == "queued"
    assert name not in vm_names(bed.si)
    pg_proxy.restore()
