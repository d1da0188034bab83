"""``job status`` read with the database driver (ceso.jobs.direct) answers exactly like SQLAlchemy.

Agents poll ``ceso --json job status``; it reads the row with ``sqlite3`` or
``psycopg`` and never imports SQLAlchemy. These tests hold that path to the
SQLAlchemy one on both databases, for jobs in every shape a row can take, and
check it falls back where it cannot answer (a database not made yet, an agent
token to authenticate).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col

from ceso.db.engine import get_engine
from ceso.db.migrate import ensure_schema
from ceso.db.models import Job
from ceso.errors import OperationError
from ceso.jobs.direct import read_job
from ceso.jobs.store import (
    ClaimLostError,
    claim_job,
    create_job,
    finish_job,
    get_job,
    job_to_dict,
    update_running,
)
from tests.conftest import Cli
from tests.security.helpers import add_agent, as_agent
from tests.support.imports import ceso_imports

pytestmark = pytest.mark.audit_exempt  # jobs are written straight into the store, not submitted


def _jobs(url: str) -> list[str]:
    """A queued, a running, a succeeded and a failed job, with steps, params, result and error."""
    engine = get_engine(url)
    ensure_schema(engine)

    def new(target: str | None, key: str | None = None) -> str:
        job, _ = create_job(
            engine,
            kind="vm.create",
            host="esxi-a",
            target=target,
            params={"cpus": 2, "name": target, "nested": {"ip": "192.0.2.10/24", "dns": ["1.1.1.1"]}},
            actor="operator:ops",
            idempotency_key=key,
            max_attempts=3,
        )
        return job.id

    queued, running, succeeded, failed = new(None, "key-1"), new("web-1"), new("web-2"), new('wéb-3 "x"')
    for job_id in (running, succeeded, failed):
        claimed = claim_job(engine, job_id=job_id, worker="w1@host", stale_after_s=60)
        assert claimed is not None
        update_running(
            engine,
            job_id=job_id,
            attempt=claimed.attempts,
            progress=40,
            current_step="copy disk 1/1",
            steps=[{"name": "inspect source", "state": "done", "duration_s": 0.02}],
            heartbeat_at=claimed.started_at,
        )
    finish_job(
        engine,
        job_id=succeeded,
        attempt=1,
        state="succeeded",
        result={"uuid": "u-1", "macs": ["00:50:56:00:00:01"]},
    )
    finish_job(
        engine,
        job_id=failed,
        attempt=1,
        state="failed",
        error=OperationError("disk copy failed: NoDiskSpace"),
    )
    return [queued, running, succeeded, failed]


def _via_sqlalchemy(url: str, job_id: str) -> dict[str, Any]:
    with Session(get_engine(url)) as session:
        return job_to_dict(get_job(session, job_id))


def test_direct_read_equals_the_sqlalchemy_path(ceso_env: dict[str, str], database_url: str) -> None:
    for job_id in _jobs(database_url):
        direct = read_job(database_url, job_id)
        assert direct is not None, "the direct path should serve this database"
        assert direct == _via_sqlalchemy(database_url, job_id)
        assert json.dumps(direct, default=str) == json.dumps(
            _via_sqlalchemy(database_url, job_id), default=str
        )


def test_job_status_process_imports_no_sql_toolkit(
    ceso_env: dict[str, str], database_url: str, cli: Cli
) -> None:
    job_id = _jobs(database_url)[2]
    proc, imported = ceso_imports(["--json", "job", "status", job_id], ceso_env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == _via_sqlalchemy(database_url, job_id)
    assert imported == set()


def test_unknown_and_malformed_ids_on_the_direct_path(
    ceso_env: dict[str, str], database_url: str, cli: Cli
) -> None:
    _jobs(database_url)
    missing = cli("--json", "job", "status", "00000000-0000-4000-8000-000000000000")
    assert missing.exit_code == 4
    assert missing.json()["error"]["message"] == "no job 00000000-0000-4000-8000-000000000000"
    bad = cli("--json", "job", "status", "'; DROP TABLE jobs; --")
    assert bad.exit_code == 2 and "invalid job id" in bad.json()["error"]["message"]
    assert read_job(database_url, _jobs(database_url)[0]) is not None  # the table is still there


def test_a_database_not_made_yet_falls_back_and_is_set_up(
    ceso_env: dict[str, str], cli: Cli, tmp_path: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'new.db'}"
    (tmp_path / "fresh").mkdir()
    assert read_job(url, "00000000-0000-4000-8000-000000000000") is None  # no file: not the direct path's job
    ceso_env["CESO_DATABASE_URL"] = url
    result = Cli(ceso_env)(
        "--json", "job", "status", "00000000-0000-4000-8000-000000000000", subprocess_=True
    )
    assert result.exit_code == 4, result.stderr
    assert (tmp_path / "fresh" / "new.db").is_file()  # the SQLAlchemy path made the schema


def test_an_agent_is_still_authenticated(
    ceso_env: dict[str, str], database_url: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _jobs(database_url)[1]
    token = add_agent(cli, "poller")
    ok = as_agent(cli, monkeypatch, token, "--json", "job", "status", job_id)
    assert ok.exit_code == 0 and ok.json()["id"] == job_id
    refused = as_agent(cli, monkeypatch, token + "x", "--json", "job", "status", job_id)
    assert refused.exit_code == 3


def test_claim_and_update_return_the_row_as_a_fresh_read_sees_it(
    ceso_env: dict[str, str], database_url: str
) -> None:
    # claim_job builds the job from UPDATE ... RETURNING instead of reading it again; update_running
    # returns only the cancel flag, and writes nothing for a stale claim token.
    engine = get_engine(database_url)
    job_id = _jobs(database_url)[0]
    claimed = claim_job(engine, job_id=job_id, worker="w2@host", stale_after_s=60)
    assert claimed is not None and job_to_dict(claimed) == _via_sqlalchemy(database_url, job_id)
    cancel = update_running(
        engine, job_id=job_id, attempt=claimed.attempts, progress=70, steps=[{"name": "x"}]
    )
    fresh = _via_sqlalchemy(database_url, job_id)
    assert cancel is False and fresh["progress"] == 70 and fresh["steps"] == [{"name": "x"}]
    assert fresh["started_at"] == job_to_dict(claimed)["started_at"]
    with Session(engine) as session:
        session.execute(sa.update(Job).where(col(Job.id) == job_id).values(cancel_requested=True))
        session.commit()
    assert update_running(engine, job_id=job_id, attempt=claimed.attempts, progress=80) is True
    with pytest.raises(ClaimLostError):  # another claim's token writes nothing
        update_running(engine, job_id=job_id, attempt=claimed.attempts + 1, progress=90)
    assert _via_sqlalchemy(database_url, job_id)["progress"] == 80
