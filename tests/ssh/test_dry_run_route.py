"""A dry run shows the plan of the route the host takes, in the CLI and through cesod alike
(``ceso.plans.plan_for``): on a free-licensed host, the ESXi shell commands, never the API calls."""

from __future__ import annotations

from typing import Any

from tests.conftest import Cli, unique
from tests.security.helpers import add_agent
from tests.ssh.conftest import SshBed
from tests.support.vms import vm_names


def test_dry_run_on_the_ssh_route_shows_its_commands_here_and_through_cesod(
    cli: Cli, ssh_bed: SshBed, start_cesod: Any
) -> None:
    bed = ssh_bed
    token = add_agent(cli, "planner", "standard")
    daemon = start_cesod()
    name = unique("dry")

    here = cli("--json", "--dry-run", "vm", "create", name, "--template", bed.template, "--disk", "2G")
    assert here.exit_code == 0, here.stdout + here.stderr
    params = {"name": name, "template": bed.template, "disk": "2G", "dry_run": True}
    answer = daemon.call(token, "vm.create", params)
    assert "result" in answer, answer
    there = answer["result"]

    plan = here.json()["plan"]
    assert there["plan"] == plan  # cesod plans for the host's route as the CLI does
    assert plan[0].startswith("SSH route") and any("vmkfstools -i" in step for step in plan)
    assert not any("CopyVirtualDisk_Task" in step or "CreateVM_Task" in step for step in plan)
    assert there["params"] == here.json()["params"]  # the job's params would be the same spec
    # A plan only: no job, no VM.
    assert cli("--json", "job", "list").json() == []
    assert name not in vm_names(bed.sim.connect())
