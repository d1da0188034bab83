"""Helpers for sandbox tests: agents, running the CLI as an agent, reading audit records."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Cli, CliResult


def add_agent(cli: Cli, name: str, mode: str = "read-only") -> str:
    """Register an agent as the operator; return its token."""
    result = cli("--json", "agent", "add", name, "--mode", mode)
    assert result.exit_code == 0, result.stdout + result.stderr
    body = result.json()
    assert body["name"] == name and body["mode"] == mode
    return str(body["token"])


def as_agent(cli: Cli, monkeypatch: pytest.MonkeyPatch, token: str, *args: str, **kw: Any) -> CliResult:
    """Run ``ceso ARGS`` with ``CESO_AGENT_TOKEN`` set (in-process unless ``subprocess_=True``)."""
    with monkeypatch.context() as m:
        m.setenv("CESO_AGENT_TOKEN", token)
        if kw.get("subprocess_"):
            return Cli({**cli.env, "CESO_AGENT_TOKEN": token})(*args, **kw)
        return cli(*args, **kw)


def audit_rows(url: str, where: str = "1=1", **params: Any) -> list[dict[str, Any]]:
    """Audit records (as dicts) matching a SQL condition, in chain order."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM audit_records WHERE {where} ORDER BY seq"), params)
            out = [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()
    for row in out:  # SQLite hands JSON back as text
        if isinstance(row["details"], str):
            row["details"] = json.loads(row["details"])
    return out
