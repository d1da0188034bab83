"""Workers re-probe their hosts periodically: a licence change reaches the route choice unaided."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from tests.conftest import Cli


def test_worker_probes_its_host_again(
    cli: Cli, registered_host: str, start_worker: Any, ceso_env: dict[str, str]
) -> None:
    engine = sa.create_engine(ceso_env["CESO_DATABASE_URL"])
    with engine.begin() as conn:  # forget what host add found
        conn.execute(
            sa.text("UPDATE hosts SET capabilities = '{}', checked_at = NULL WHERE name = :n"),
            {"n": registered_host},
        )
    start_worker(registered_host, env={"CESO_HOST_PROBE_INTERVAL_S": "1"})
    seen: list[Any] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            checked = conn.execute(
                sa.text("SELECT checked_at FROM hosts WHERE name = :n"), {"n": registered_host}
            ).scalar()
        if checked is not None:
            seen.append(checked)
            if len(set(seen)) >= 2:  # probed at start and again a second later
                break
        time.sleep(0.3)
    with engine.connect() as conn:
        capabilities = conn.execute(
            sa.text("SELECT capabilities FROM hosts WHERE name = :n"), {"n": registered_host}
        ).scalar()
    engine.dispose()
    assert len(set(seen)) >= 2, seen
    assert "api_writes" in (json.loads(capabilities) if isinstance(capabilities, str) else capabilities)
