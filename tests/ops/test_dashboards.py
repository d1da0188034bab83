"""The Grafana dashboards: generated, well-formed, every query parses in a real Prometheus, and
after a real workload every query returns data: a ``ceso worker`` runs host.ping, test.sleep,
vm.create, vm.clone and backup.create jobs against the simulator while cesod answers an agent's
allowed and refused calls, and Prometheus scrapes both every second.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import Cli, unique
from tests.jobs.test_worker_e2e import _submit
from tests.ops.prom import REPO, RULES, PrometheusServer, PromQLError
from tests.security.helpers import add_agent
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, make_template, vm_names

GRAFANA = REPO / "ops" / "grafana"
BUILD = GRAFANA / "build_dashboards.py"

#: What Grafana fills in for its variables; the test's values (scrapes every 1 s, a short run).
VARIABLES = {"$__rate_interval": "5m", "$__range": "10m", "$host": ".*", "$agent": ".*"}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def queries() -> Iterator[tuple[str, str, str, str]]:
    """(dashboard uid, panel title, refId, PromQL with Grafana's variables filled in) of every target."""
    for uid, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield uid, panel["title"], target["refId"], substitute(target["expr"])


def substitute(expr: str) -> str:
    for name, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r} (known: {', '.join(VARIABLES)})"
    return expr


# -- static checks ---------------------------------------------------------------------------------
def test_committed_dashboards_match_the_generator() -> None:
    proc = subprocess.run(
        [sys.executable, str(BUILD), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, (
        f"ops/grafana/dashboards/*.json differ from {BUILD.name}; regenerate with "
        f"`.venv/bin/python ops/grafana/build_dashboards.py`:\n{proc.stderr}"
    )


def test_dashboards_are_well_formed_and_use_the_provisioned_datasource() -> None:
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (ds,) = datasource["datasources"]
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "ceso.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    boards = dashboards()
    assert {b["title"] for b in boards.values()} == {"ceso operations", "ceso agents"}
    for uid, board in boards.items():
        assert board["uid"] == uid
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids"
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, (uid, panel["title"])
            if panel["type"] == "row":
                continue
            # The data source is the dashboard's variable, never a hard-coded uid.
            assert panel["datasource"] == {"type": ds["type"], "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], (uid, panel["title"])
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))
            for target in panel["targets"]:
                assert target["datasource"] == {"type": ds["type"], "uid": "${datasource}"}
        source, *variables = board["templating"]["list"]
        # ... which offers every Prometheus and defaults to the provisioned one.
        assert (source["name"], source["type"], source["query"]) == ("datasource", "datasource", "prometheus")
        assert source["current"]["value"] == ds["uid"]
        for variable in variables:
            assert variable["datasource"] == {"type": ds["type"], "uid": "${datasource}"}
    operations = {p["title"] for p in boards["ceso-operations"]["panels"]}
    exprs = " ".join(t["expr"] for p in boards["ceso-operations"]["panels"] for t in p.get("targets", []))
    for metric in (
        "ceso_jobs_in_state",
        "ceso_jobs_total",
        "ceso_job_duration_seconds_bucket",
        "ceso_queue_depth",
        "ceso_backup_bytes_total",
        "ceso_last_successful_backup_timestamp_seconds",
        "ceso_last_successful_drill_timestamp_seconds",
        "ceso_backup_drills_total",
        "ceso_esxi_request_duration_seconds_bucket",
        "ceso_esxi_errors_total",
        "ceso_lock_wait_seconds_bucket",
    ):
        assert metric in exprs, metric
    assert 'le="90.0"' in exprs and 'le="300.0"' in exprs and 'le="600.0"' in exprs
    assert "Queue depth per host" in operations
    # Every query of the operations dashboard honours the host selector.
    for panel in boards["ceso-operations"]["panels"]:
        for target in panel.get("targets", []):
            assert '"$host"' in target["expr"], (panel["title"], target["expr"])
    agents = " ".join(t["expr"] for p in boards["ceso-agents"]["panels"] for t in p.get("targets", []))
    assert "ceso_agent_operations_total" in agents and "ceso_promotions_active" in agents
    assert 'outcome="refused"' in agents


def test_every_query_parses_in_prometheus(tmp_path: Path) -> None:
    server = PrometheusServer.start(tmp_path / "prometheus")
    try:
        errors = []
        for uid, title, ref, expr in queries():
            try:
                server.query(expr)
            except PromQLError as exc:
                errors.append(f"{uid} / {title} / {ref}: {exc}\n  {expr}")
        # And the check itself catches a broken query.
        with pytest.raises(PromQLError, match="parse error"):
            server.query("sum by (kind (rate(ceso_jobs_total[5m]))")
    finally:
        server.stop()
    assert not errors, "\n".join(errors)


# -- after a real workload -------------------------------------------------------------------------
@pytest.fixture
def template(cli: Cli, sim: SimulatorHost, registered_host: str) -> Iterator[str]:
    si = sim.connect()
    name = unique("tmpl")
    make_template(si, sim.datastore_dir(), name, b"ceso dashboard test disk\n" * 4096)
    before = set(vm_names(si))
    added = cli("--json", "template", "add", name, "--host", registered_host)
    assert added.exit_code == 0, added.stdout + added.stderr
    yield name
    for vm in set(vm_names(si)) - before:
        destroy_vm(si, vm)
    destroy_vm(si, name)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the production database
def test_every_query_returns_data_after_a_real_workload(
    cli: Cli,
    registered_host: str,
    template: str,
    sim_factory: Any,
    start_worker: Any,
    start_cesod: Any,
    tmp_path: Path,
) -> None:
    host = registered_host
    # A second host whose clock read fails: vSphere faults and failed jobs for the fault panels.
    faulty_sim = sim_factory(extra_args=("-fail-methods", "CurrentTime"))
    faulty = unique("faulty")
    added = cli(
        "host", "add", faulty, "--url", faulty_sim.url, "--user", "root", "--password-stdin", input="pw\n"
    )
    assert added.exit_code == 0, added.stderr
    store = tmp_path / "backups"
    store.mkdir()
    backup_target = unique("local")
    added = cli("target", "add", backup_target, "--type", "local", "--path", str(store))
    assert added.exit_code == 0, added.stderr
    worker = start_worker(host, faulty, concurrency=2)
    agent = unique("bot")
    token = add_agent(cli, agent)  # read-only
    daemon = start_cesod()
    server = PrometheusServer.start(
        tmp_path / "prometheus",
        targets=(urlsplit(worker.metrics_url()).netloc,),
        rule_files=(RULES,),
        jobs={"cesod": (urlsplit(daemon.metrics_url()).netloc,)},
    )
    try:
        server.wait_for('up{job="ceso-workers"} == 1')
        server.wait_for('up{job="cesod"} == 1')
        finished = agent_calls = 0

        def run(*args: str, code: int = 0) -> None:
            nonlocal finished
            result = cli(*args, "--timeout", "120")
            assert result.exit_code == code, (args, result.stdout, result.stderr)
            finished += 1

        def sleep_job(fail: bool) -> None:
            nonlocal finished
            params: dict[str, Any] = {"seconds": 0.2}
            if fail:
                params["fail"] = "on purpose"
            job = _submit("test.sleep", host, params=params)
            assert cli("job", "wait", job, "--timeout", "60").exit_code == (1 if fail else 0)
            finished += 1

        def agent_round(vm: str) -> None:
            nonlocal agent_calls
            assert "result" in daemon.call(token, "job.list")
            refused = daemon.call(token, "vm.delete", {"name": vm, "host": host})
            assert refused["error"]["data"]["code"] == "not_permitted", refused
            agent_calls += 2

        def scraped() -> None:
            # Every finished job and agent call is in Prometheus: the next round's observations
            # land in a later scrape.
            server.wait_for(f"sum(ceso_jobs_total) == {finished}")
            server.wait_for(f"sum(ceso_agent_operations_total) == {agent_calls}")

        source = unique("src")
        # Each kind and outcome runs in at least two rounds, so rates and quantiles are not empty.
        for round_ in range(3):
            run("host", "ping", host)
            sleep_job(fail=False)
            run("host", "ping", faulty, code=1)
            agent_round(source)
            if round_ == 0:
                run("vm", "create", source, "--template", template, "--no-power-on", "--ip", "192.0.2.30/24")
            if round_ == 1:
                sleep_job(fail=True)
                run("vm", "create", unique("web"), "--template", template, "--ip", "192.0.2.31/24")
                run("vm", "clone", source, unique("clone"), "--ip", "192.0.2.32/24")
                run("backup", "create", source, "--host", host, "--target", backup_target)
                # The template's disk does not boot: the drill fails, and its gauge reads 0.
                run("backup", "drill", "--vm", source, "--boot-timeout", "1", code=1)
            if round_ == 2:
                sleep_job(fail=True)
                run("vm", "clone", source, unique("clone"), "--ip", "192.0.2.33/24")
                run("backup", "create", source, "--host", host, "--target", backup_target)
                run("backup", "drill", "--vm", source, "--boot-timeout", "1", code=1)
            scraped()

        missing = []
        for uid, title, ref, expr in queries():
            result = server.query(expr)
            if not [r for r in result if not math.isnan(float(r["value"][1]))]:
                missing.append(f"{uid} / {title} / {ref}: {'only NaN' if result else 'no data'}\n  {expr}")
        assert not missing, "queries without data after the workload:\n" + "\n".join(missing)

        # The host variable of the operations dashboard lists both hosts.
        hosts = server.api("label/host/values", **{"match[]": "ceso_jobs_total"})
        assert {host, faulty} <= set(hosts)
        # The agent variable of the agents dashboard lists the agent, scraped from cesod.
        agents = server.api("label/agent/values", **{"match[]": 'ceso_agent_operations_total{job="cesod"}'})
        assert agents == [agent]
        # The alert rules evaluate without errors against real ceso series.
        groups = server.api("rules")["groups"]
        assert groups and all(r["health"] == "ok" for g in groups for r in g["rules"]), groups
        # And none fires for this workload (no worker down, no failed backups, no long queues).
        assert [a for a in server.api("alerts")["alerts"] if a["state"] == "firing"] == []
    finally:
        server.stop()


def test_variable_substitution_rejects_unknown_variables() -> None:
    with pytest.raises(AssertionError, match="unknown Grafana variable"):
        substitute("rate(ceso_jobs_total[$__interval])")
    assert re.fullmatch(r"rate\(x\[5m\]\)", substitute("rate(x[$__rate_interval])"))
