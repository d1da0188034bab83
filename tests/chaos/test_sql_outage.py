"""PostgreSQL unreachable while messages are delivered: the worker reaches SQL through a TCP proxy
that the test cuts (every connection reset, new ones refused) and restores. A delivery that cannot
claim its job is not acknowledged as done: it comes again, and once SQL answers every job runs;
each VM is then on the host exactly once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import Cli, unique
from tests.support.chaos import assert_record_matches_host, orphan_dirs, repoint, wait_terminal
from tests.support.proxy import FaultProxy
from tests.vm.conftest import TemplateBed

REPEAT = int(os.environ.get("CESO_CHAOS_REPEAT", "2"))
OUTAGE_S = 8.0

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def sql_proxy(ceso_env: dict[str, str]) -> Iterator[tuple[FaultProxy, str]]:
    """The installation's PostgreSQL behind a proxy (set up before ``bed`` starts its worker); the
    direct URL is kept for the test's own reads."""
    direct = ceso_env["CESO_DATABASE_URL"]
    parts = urlsplit(direct)
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    repoint(
        ceso_env, CESO_DATABASE_URL=proxied, CESO_JOBS__RELAY_INTERVAL_S="1", CESO_JOBS__REPUBLISH_AFTER_S="3"
    )
    yield proxy, direct
    proxy.close()


def test_jobs_delivered_while_postgresql_is_unreachable_are_not_lost(
    cli: Cli, sql_proxy: tuple[FaultProxy, str], bed: TemplateBed
) -> None:
    proxy, direct = sql_proxy
    total = 0
    for run in range(REPEAT):
        prefix = unique(f"sq{run}")
        os.kill(bed.worker.proc.pid, signal.SIGSTOP)  # messages wait in Redis until SQL is gone
        try:
            names = {_create(cli, bed, n): n for n in (f"{prefix}-{i}" for i in range(3))}
            proxy.cut()
        finally:
            os.kill(bed.worker.proc.pid, signal.SIGCONT)  # now it receives them, with SQL unreachable
        time.sleep(OUTAGE_S)
        proxy.restore()
        rows = wait_terminal(direct, list(names), timeout=90)
        assert {i: r["state"] for i, r in rows.items()} == dict.fromkeys(names, "succeeded"), rows
        assert_record_matches_host(bed.si, bed.datastore_dir, rows, names)
        assert orphan_dirs(bed.si, bed.datastore_dir, prefix) == []
        assert bed.worker.proc.poll() is None, bed.worker.output()[-3000:]
        total += len(names)
    output = bed.worker.output()
    assert "database unreachable" in output  # the deliveries did meet the outage
    print(f"\nPostgreSQL cut {OUTAGE_S:.0f} s under deliveries: {REPEAT} runs, {total} creates, 0 lost")


def _create(cli: Cli, bed: TemplateBed, name: str) -> str:
    result = cli("--json", "vm", "create", name, "--template", bed.template, "--no-wait")
    assert result.exit_code == 0, result.stdout + result.stderr
    return str(result.json()["id"])
