"""Hostile bearer tokens: a rejected string never becomes a "secret", and cesod stays flat under thousands.

A client that can reach cesod sends ``Authorization: Bearer existing-0001`` (the name of a real VM)
and is refused. A legitimate agent's snapshot of that VM must still work, and SQL and the audit
trail must name the VM, not ``[REDACTED]``. Then thousands of distinct bad tokens: cesod's memory
is measured before and after (printed; the assertion is a generous bound, not a timing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.conftest import Cli
from tests.security.helpers import add_agent, audit_rows
from tests.support.vms import create_vm, snapshot_names, vm_by_name
from tests.vm.conftest import TemplateBed, bed  # noqa: F401  (the fixture)

BAD_TOKENS = 2000


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_rejected_token_poisons_nothing_and_cesod_stays_flat(
    cli: Cli,
    bed: TemplateBed,  # noqa: F811  (the fixture imported above)
    start_cesod: Any,
    ceso_env: dict[str, str],
) -> None:
    url = ceso_env["CESO_DATABASE_URL"]
    vm = "existing-0001"
    create_vm(bed.si, vm)
    token = add_agent(cli, "bot", mode="standard")
    daemon = start_cesod(CESO_CESOD__RATE_PER_ADDRESS="0")  # thousands from one address: no 429s here

    status, body = daemon.post({"jsonrpc": "2.0", "id": 1, "method": "vm.list"}, token=vm)
    assert status == 401 and body["error"]["data"]["code"] == "unauthenticated"

    done = daemon.call(
        token,
        "vm.snapshot.create",
        {"name": vm, "snapshot": "pre-upgrade", "wait": True, "timeout": 60},
        timeout=90,
    )
    assert "result" in done, done
    assert done["result"]["state"] == "succeeded", done
    assert snapshot_names(bed.si, vm_by_name(bed.si, vm)) == ["pre-upgrade"]  # the host, read directly
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            target, params = conn.execute(
                sa.text("SELECT target, params FROM jobs WHERE id = :id"), {"id": done["result"]["id"]}
            ).one()
    finally:
        engine.dispose()
    params = json.loads(params) if isinstance(params, str) else params
    assert target == vm and params["name"] == vm
    submitted = audit_rows(url, "event = 'job.submitted'")
    assert [r["vm"] for r in submitted] == [vm]
    assert "[REDACTED]" not in json.dumps(submitted[0]["details"])

    before = _rss_mib(daemon.proc.pid)
    for i in range(BAD_TOKENS):
        status, _ = daemon.post({"jsonrpc": "2.0", "id": 1, "method": "vm.list"}, token=f"bad-token-{i:06d}")
        assert status == 401
    after = _rss_mib(daemon.proc.pid)
    print(f"cesod RSS across {BAD_TOKENS} distinct bad tokens: {before:.1f} -> {after:.1f} MiB")
    # Registering every rejected token grew cesod by hundreds of MiB over this many; what is
    # left is allocator noise and the audit rows' buffers.
    assert after - before < 40, (before, after)

    # A later legitimate call on the same VM still sees its real name.
    listed = daemon.call(token, "vm.info", {"name": vm})["result"]
    assert listed["name"] == vm
