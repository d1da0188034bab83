"""`ceso vm clone`: cold, hot and with a source shutdown; the source is never changed."""

from __future__ import annotations

from typing import Any

import yaml

from ceso.cloudinit import decode_guestinfo
from tests.conftest import Cli, unique
from tests.support.vms import devices_of, extra_config, snapshot_names, vm_by_name
from tests.vm.conftest import TemplateBed


def _fingerprint(vm: Any) -> dict[str, Any]:
    """What must not change on a clone's source."""
    return {
        "uuid": vm.config.uuid,
        "macs": [n.macAddress for n in devices_of(vm, "VirtualEthernetCard")],
        "disks": [d.backing.fileName for d in devices_of(vm, "VirtualDisk")],
        "extra": extra_config(vm),
        "cpus": vm.config.hardware.numCPU,
    }


def test_cold_clone_has_new_identity_and_leaves_source_alone(cli: Cli, bed: TemplateBed) -> None:
    source = unique("src")
    assert (
        cli(
            "vm",
            "create",
            source,
            "--template",
            bed.template,
            "--ip",
            "192.0.2.20/24",
            "--no-power-on",
            "--timeout",
            "120",
        ).exit_code
        == 0
    )
    src_vm = vm_by_name(bed.si, source)
    before = _fingerprint(src_vm)
    src_meta = yaml.safe_load(decode_guestinfo(extra_config(src_vm))["metadata"])

    clone = unique("clone")
    result = cli(
        "--json",
        "vm",
        "clone",
        source,
        clone,
        "--ip",
        "192.0.2.21/24",
        "--gateway",
        "192.0.2.1",
        "--timeout",
        "120",
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    new = vm_by_name(bed.si, clone)
    assert new.config.uuid != before["uuid"]
    new_macs = [n.macAddress for n in devices_of(new, "VirtualEthernetCard")]
    assert not set(new_macs) & set(before["macs"])
    assert (bed.datastore_dir / clone / f"{clone}-flat.vmdk").read_bytes() == bed.payload
    meta = yaml.safe_load(decode_guestinfo(extra_config(new))["metadata"])
    assert meta["instance-id"] != src_meta["instance-id"]
    assert meta["local-hostname"] == clone
    assert meta["network"]["ethernets"]["nic0"]["match"]["macaddress"] == new_macs[0]
    assert meta["network"]["ethernets"]["nic0"]["addresses"] == ["192.0.2.21/24"]
    assert _fingerprint(vm_by_name(bed.si, source)) == before
    assert result.json()["result"]["source"] == source


def test_running_source_needs_hot_or_shutdown(cli: Cli, bed: TemplateBed) -> None:
    source = unique("live")
    assert cli("vm", "create", source, "--template", bed.template, "--timeout", "120").exit_code == 0
    refused = cli("--json", "vm", "clone", source, unique("c"), "--timeout", "120")
    assert refused.exit_code == 5
    assert "pass --shutdown-source or --hot" in refused.json()["error"]["message"]

    # The user's own snapshot must survive the temporary one.
    vm_by_name(bed.si, source).CreateSnapshot_Task(name="mine", description="", memory=False, quiesce=False)
    hot = unique("hot")
    result = cli("--json", "vm", "clone", source, hot, "--hot", "--no-power-on", "--timeout", "120")
    assert result.exit_code == 0, result.stdout
    src = vm_by_name(bed.si, source)
    assert snapshot_names(bed.si, src) == ["mine"]  # only the temporary snapshot is gone
    assert src.runtime.powerState == "poweredOn"
    steps = [s["name"] for s in result.json()["steps"]]
    assert (
        steps.index("snapshot source") < steps.index("copy disk 1/1") < steps.index("remove source snapshot")
    )
    assert vm_by_name(bed.si, hot) is not None

    cold = unique("cold")
    shut = cli(
        "--json", "vm", "clone", source, cold, "--shutdown-source", "--no-power-on", "--timeout", "120"
    )
    assert shut.exit_code == 0, shut.stdout
    assert vm_by_name(bed.si, source).runtime.powerState == "poweredOn"
    assert "power source back on" in [s["name"] for s in shut.json()["steps"]]
