"""cesod end to end: jobs through JSON-RPC, a real worker and the simulator; the sandbox on every call."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.security.helpers import add_agent, audit_rows
from tests.support.vms import vm_by_name, vm_names
from tests.vm.conftest import TemplateBed

RAILS = json.dumps(
    {"standard": {"ip_ranges": ["192.0.2.0/24"], "max_cpus": 2}, "admin": {"delete_only_own": True}}
)


def test_read_only_agent_is_refused_then_promoted_through_cesod(
    cli: Cli, bed: TemplateBed, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    url = ceso_env["CESO_DATABASE_URL"]
    token = add_agent(cli, "bot")
    daemon = start_cesod()
    before = set(vm_names(bed.si))
    name = unique("web")
    create = {
        "name": name,
        "template": bed.template,
        "ip": "192.0.2.20/24",
        "gateway": "192.0.2.1",
        "no_power_on": True,
    }
    refused = daemon.call(token, "vm.create", create)["error"]
    assert (refused["code"], refused["data"]["code"]) == (-32003, "not_permitted")
    refused = daemon.call(token, "vm.delete", {"name": bed.template, "host": bed.host})["error"]
    assert refused["code"] == -32003 and "needs mode admin" in refused["message"]
    assert set(vm_names(bed.si)) == before and cli("--json", "job", "list").json() == []
    refusals = audit_rows(url, "event = 'access.refused'")
    assert [(r["operation"], r["source"], r["client_addr"], r["actor"]) for r in refusals] == [
        ("vm.create", "cesod", "127.0.0.1", "agent:bot"),
        ("vm.delete", "cesod", "127.0.0.1", "agent:bot"),
    ]

    asked = daemon.call(token, "agent.request_promotion", {"mode": "standard", "for": "15m", "reason": "web"})
    assert cli("agent", "approve", str(asked["result"]["id"])).exit_code == 0
    done = daemon.call(token, "vm.create", {**create, "wait": True, "timeout": 60}, timeout=90)["result"]
    assert done["state"] == "succeeded", done
    assert done["actor"] == "agent:bot" and done["kind"] == "vm.create"
    assert vm_by_name(bed.si, name) is not None
    assert daemon.call(token, "job.status", {"id": done["id"]})["result"]["state"] == "succeeded"
    assert daemon.call(token, "job.wait", {"id": done["id"], "timeout": 1})["result"]["id"] == done["id"]
    listed = daemon.call(token, "vm.list", {"host": bed.host})["result"]
    assert name in {v["name"] for v in listed}
    assert daemon.call(token, "vm.info", {"name": name})["result"]["name"] == name
    submitted = audit_rows(url, "event = 'job.submitted'")
    assert [(r["actor"], r["mode"], r["source"], r["client_addr"]) for r in submitted] == [
        ("agent:bot", "standard", "cesod", "127.0.0.1")
    ]
    lines = [json.loads(line.split(" ", 2)[2]) for line in daemon.access_log.read_text().splitlines()]
    assert any(c["method"] == "vm.create" and c["outcome"] == "ok" for line in lines for c in line["calls"])
    assert {line["actor"] for line in lines} == {"agent:bot"}


def test_guard_rails_and_deleting_only_own_vms(
    cli: Cli,
    bed: TemplateBed,
    start_cesod: Any,
    monkeypatch: pytest.MonkeyPatch,
    ceso_env: dict[str, str],
) -> None:
    monkeypatch.setenv("CESO_SECURITY__RAILS", RAILS)
    from ceso.runtime import get_runtime
    from ceso.settings import get_settings

    get_settings.cache_clear()
    get_runtime.cache_clear()
    standard = add_agent(cli, "builder", "standard")
    admin = add_agent(cli, "janitor", "admin")
    daemon = start_cesod(CESO_SECURITY__RAILS=RAILS)
    base = {"template": bed.template, "dry_run": True}
    outside = daemon.call(standard, "vm.create", {**base, "name": "a1", "ip": "198.51.100.5/24"})["error"]
    assert outside["data"]["code"] == "guard_rail"
    assert outside["message"] == (
        "agent builder (mode standard): --ip 198.51.100.5/24 is outside the allowed ranges (192.0.2.0/24)"
    )
    big = daemon.call(standard, "vm.create", {**base, "name": "a1", "cpus": 4})["error"]
    assert big["data"]["code"] == "guard_rail" and "above the limit of 2" in big["message"]
    plan = daemon.call(standard, "vm.create", {**base, "name": "a1", "ip": "192.0.2.9/24", "cpus": 2})[
        "result"
    ]
    assert plan["dry_run"] is True and plan["kind"] == "vm.create"

    theirs = unique("op")
    made = cli(
        "--json", "vm", "create", theirs, "--template", bed.template, "--no-power-on", "--timeout", "120"
    )
    assert made.exit_code == 0, made.stdout
    refused = daemon.call(admin, "vm.delete", {"name": theirs})["error"]
    assert refused["data"]["code"] == "guard_rail" and "may delete only VMs it created" in refused["message"]
    mine = unique("mine")
    created = daemon.call(
        admin,
        "vm.create",
        {"name": mine, "template": bed.template, "no_power_on": True, "wait": True},
        timeout=90,
    )["result"]
    assert created["state"] == "succeeded", created
    deleted = daemon.call(admin, "vm.delete", {"name": mine, "wait": True, "timeout": 60}, timeout=90)[
        "result"
    ]
    assert deleted["state"] == "succeeded", deleted
    assert mine not in vm_names(bed.si) and theirs in vm_names(bed.si)
    rails = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'access.refused'")
    assert [r["details"]["code"] for r in rails] == ["guard_rail", "guard_rail", "guard_rail"]
