"""Power, snapshot and delete on several VMs at once: names or --match, one job each, a summary,
the exit status of the failures; effects read back with pyVmomi."""

from __future__ import annotations

import re

from tests.conftest import unique
from tests.support.vms import snapshot_names, vm_by_name
from tests.vm.lifecycle.conftest import Lab


def test_power_snapshot_and_delete_several_vms(lab: Lab) -> None:
    group = unique("many")
    names = [lab.vm(f"{group}-a"), lab.vm(f"{group}-b")]
    other = lab.vm("bystander")

    done = lab.cli("vm", "power", "on", *names, "--json", "--progress", "--timeout", "90")
    assert done.exit_code == 0, done.stdout + done.stderr
    # --progress without a terminal: a line on stderr at each step of each job
    assert re.search(r"^job [0-9a-f]{8} running: .+ \d+%$", done.stderr, re.MULTILINE), done.stderr
    summary = done.json()
    assert summary["errors"] == [] and len(summary["jobs"]) == 2
    assert {j["kind"] for j in summary["jobs"]} == {"vm.power"} and len(
        {j["id"] for j in summary["jobs"]}
    ) == 2
    assert [lab.get(n).runtime.powerState for n in names] == ["poweredOn", "poweredOn"]

    snap = lab.cli("vm", "snapshot", "create", "--match", f"{group}-*", "s1", "--host", lab.host,
                   "--json", "--timeout", "90")  # fmt: skip
    assert snap.exit_code == 0, snap.stdout + snap.stderr
    assert [snapshot_names(lab.si, lab.get(n)) for n in names] == [["s1"], ["s1"]]
    assert lab.snapshot_info(other) is None  # not matched, not touched

    # One VM fails (reset needs a running VM): the others still run; exit with its code.
    assert lab.cli("vm", "power", "off", names[1], "--timeout", "90").exit_code == 0
    mixed = lab.cli("vm", "power", "reset", *names, "--json", "--timeout", "90")
    assert mixed.exit_code == 5, mixed.stdout + mixed.stderr
    report = mixed.json()
    assert [(e["name"], e["code"]) for e in report["errors"]] == [(names[1], "conflict")]
    assert [j["state"] for j in report["jobs"]] == ["succeeded"]  # the refused one made no job

    # delete asks once for all of them: without a terminal that is --yes, and nothing is sent before.
    unconfirmed = lab.cli("vm", "delete", "--match", f"{group}-*", "--force")
    assert unconfirmed.exit_code == 2 and "pass --yes" in unconfirmed.stderr
    assert all(vm_by_name(lab.si, n) is not None for n in names)
    gone = lab.cli("vm", "delete", "--match", f"{group}-*", "--force", "--yes", "--timeout", "90")
    assert gone.exit_code == 0, gone.stdout + gone.stderr
    table = gone.stdout.split("VM\tJOB\tOUTCOME\n")[1].splitlines()  # the summary after each job's report
    assert [(row.split("\t")[0], row.split("\t")[2]) for row in table] == [(n, "succeeded") for n in names]
    assert [vm_by_name(lab.si, n) for n in names] == [None, None]
    assert vm_by_name(lab.si, other) is not None

    nothing = lab.cli("vm", "power", "on", "--match", f"{group}-*", "--host", lab.host)
    assert nothing.exit_code == 2 and "no VM matches" in nothing.stderr
    keyed = lab.cli("vm", "power", "on", other, other + "x", "--idempotency-key", "k1")
    assert keyed.exit_code == 2
