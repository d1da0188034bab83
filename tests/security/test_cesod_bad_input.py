"""cesod's side of the bad-input corpus: the same validators as the CLI, one JSON-RPC error each
(-32602, ``invalid_input``), no job and nothing on the host."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import Cli, unique
from tests.security.helpers import add_agent
from tests.support.vms import vm_names
from tests.vm.conftest import TemplateBed


def test_cesod_refuses_what_the_columns_and_esxi_refuse(
    cli: Cli, bed: TemplateBed, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    token = add_agent(cli, "bot", mode="standard")
    daemon = start_cesod()
    before = set(vm_names(bed.si))
    create = {"name": unique("web"), "template": bed.template, "no_power_on": True}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"memory": "1.5G"}, "write 1536M"),
        ({"memory": "30T"}, "over ESXi's maximum"),
        ({"memory": "16"}, "write 16G for 16 GiB"),
        ({"disk": "2048"}, "write 2T for that size, or 2048M"),
        ({"disk": "63T"}, "over ESXi's maximum of 62T"),
        ({"cpus": 769}, "outside 1-768"),
        ({"name": "n" * 81}, "at most 80"),
        ({"idempotency_key": "k" * 201}, "200"),
    ]
    for extra, fragment in cases:
        error = daemon.call(token, "vm.create", {**create, **extra})["error"]
        assert error["code"] == -32602, (extra, error)
        assert fragment in error["message"], (extra, error)
    engine = sa.create_engine(ceso_env["CESO_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one() == 0
    finally:
        engine.dispose()
    assert set(vm_names(bed.si)) == before
