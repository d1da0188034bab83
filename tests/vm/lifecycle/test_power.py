"""`ceso vm power` end to end: each action's effect read back with pyVmomi, refusals leave no job."""

from __future__ import annotations

from typing import Any

from tests.conftest import Cli, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import create_vm
from tests.vm.lifecycle.conftest import Lab, calls_of, steps_of, wait


def test_power_actions(lab: Lab) -> None:
    name = lab.vm("pwr")

    job = lab.ok("vm", "power", "on", name)
    assert lab.get(name).runtime.powerState == "poweredOn"
    assert calls_of(job) == ["VirtualMachine.PowerOnVM_Task"]
    assert job["result"]["changed"] is True and job["result"]["power_state"] == "poweredOn"

    again = lab.ok("vm", "power", "on", name)  # idempotent: a note, no call
    assert again["result"]["changed"] is False and "already poweredOn" in again["result"]["note"]
    assert calls_of(again) == []

    job = lab.ok("vm", "power", "reset", name)
    assert calls_of(job) == ["VirtualMachine.ResetVM_Task"]
    assert lab.get(name).runtime.powerState == "poweredOn"

    reboot = lab.cli("--json", "vm", "power", "reboot", name, "--timeout", "60")
    assert reboot.exit_code == 1, reboot.stdout + reboot.stderr
    failed: dict[str, Any] = reboot.json()
    assert failed["state"] == "failed" and failed["error"]["code"] == "not_supported"
    assert "not supported by this host" in failed["error"]["message"]
    assert calls_of(failed) == ["VirtualMachine.RebootGuest"]
    plain = lab.cli("vm", "power", "reboot", name, "--timeout", "60")
    assert plain.exit_code == 1 and "not supported by this host" in plain.stderr
    assert lab.get(name).runtime.powerState == "poweredOn"

    job = lab.ok("vm", "power", "shutdown", name)
    assert calls_of(job) == ["VirtualMachine.ShutdownGuest"]
    assert lab.get(name).runtime.powerState == "poweredOff"
    assert lab.ok("vm", "power", "off", name)["result"]["changed"] is False

    job = lab.ok("vm", "power", "on", name, "--host", lab.host)
    job = lab.ok("vm", "power", "off", name, "--host", lab.host)
    assert calls_of(job) == ["VirtualMachine.PowerOffVM_Task"]
    assert lab.get(name).runtime.powerState == "poweredOff"


def test_no_wait_and_dry_run(lab: Lab) -> None:
    name = lab.vm("nw")
    dry = lab.cli("--dry-run", "vm", "power", "on", name)
    assert dry.exit_code == 0 and "would queue vm.power" in dry.stdout and "PowerOnVM_Task" in dry.stdout
    assert lab.get(name).runtime.powerState == "poweredOff" and lab.job_count() == 0

    queued = lab.cli("vm", "power", "on", name, "--no-wait")
    assert queued.exit_code == 0, queued.stderr
    job_id = queued.stdout.strip()
    waited = lab.cli("--json", "job", "wait", job_id, "--timeout", "60")
    assert waited.exit_code == 0 and waited.json()["state"] == "succeeded"
    assert lab.get(name).runtime.powerState == "poweredOn"


def test_refusals_change_nothing(lab: Lab) -> None:
    off = lab.vm("off")
    template = lab.vm("tmpl")
    assert lab.cli("template", "add", template, "--host", lab.host).exit_code in (0, 1)
    before = lab.job_count()
    cases: list[tuple[list[str], int, str]] = [
        (["vm", "power", "reset", off], 5, "needs a powered-on VM"),
        (["vm", "power", "reboot", off], 5, "needs a powered-on VM"),
        (["vm", "power", "on", "nope-404"], 4, "no VM named"),
        (["vm", "power", "on", template], 5, "registered template"),
        (["vm", "power", "on", off, "--force"], 2, "--force only applies to shutdown"),
        (["vm", "power", "shutdown", off, "--timeout-guest", "0"], 2, "--timeout-guest"),
        (["vm", "power", "hibernate", off], 2, "hibernate"),
    ]
    for args, code, fragment in cases:
        result = lab.cli(*args)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        assert fragment in result.stderr, (args, result.stderr)
    assert lab.get(off).runtime.powerState == "poweredOff"
    assert lab.get(template).runtime.powerState == "poweredOff"
    assert lab.job_count() == before


def test_shutdown_falls_back_to_power_off_only_with_force(
    cli: Cli, sim_factory: Any, start_worker: Any
) -> None:
    """A guest that refuses to shut down (ShutdownGuest answered with a fault)."""
    sim: SimulatorHost = sim_factory(extra_args=("-fail-methods", "ShutdownGuest"))
    host = unique("stubborn")
    added = cli("host", "add", host, "--url", sim.url, "--user", "root", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.stderr
    start_worker(host)
    si = sim.connect()
    name = unique("hung")
    vm = create_vm(si, name)
    wait(vm.PowerOnVM_Task())

    plain = cli("--json", "vm", "power", "shutdown", name, "--timeout", "60")
    assert plain.exit_code == 1, plain.stdout + plain.stderr
    assert plain.json()["state"] == "failed" and "SystemError" in plain.json()["error"]["message"]
    assert vm.runtime.powerState == "poweredOn"

    forced = cli("--json", "vm", "power", "shutdown", name, "--force", "--timeout", "60")
    assert forced.exit_code == 0, forced.stdout + forced.stderr
    job = forced.json()
    steps = steps_of(job)
    assert steps["guest shutdown"]["state"] == "failed"
    assert steps["power off (fallback)"]["state"] == "succeeded"
    assert calls_of(job) == ["VirtualMachine.ShutdownGuest", "VirtualMachine.PowerOffVM_Task"]
    assert vm.runtime.powerState == "poweredOff"
