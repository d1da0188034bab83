"""The hardware a backup records (ceso.backup.hardware), without a host: a restore builds what a clone builds.

Beside the end-to-end restores on the API route (test_backup_restore.py) and the
SSH route (tests/ssh/test_backup_over_ssh.py): the ConfigSpec a restore builds
from a manifest, written to JSON and read back, is the one a clone of the same
source builds; a manifest written before the field restores as before.
"""

from __future__ import annotations

import json
from typing import Any

from pyVmomi import SoapAdapter, VmomiSupport

from ceso.backends.fake import FakeBackend
from ceso.backends.vmomi import vim
from ceso.backup.restore import source_of
from ceso.backup.vmsource import BACKUP_PROPERTIES, _summary
from ceso.operations.provision import ProvisionOptions, build_config_spec
from tests.vm.test_fake_backend_fidelity import DS, fake_hardware_source

PATHS = [f"[{DS}] new/new.vmdk"]


def _spec(source: dict[str, Any]) -> bytes:
    spec = build_config_spec(
        source=source,
        opts=ProvisionOptions(name="new"),
        datastore=DS,
        disk_paths=PATHS,
        macs=["00:50:56:00:00:01"],
        extra_config={"guestinfo.metadata": "x"},
    )
    spec.uuid = "00000000-0000-0000-0000-000000000000"
    return bytes(SoapAdapter.Serialize(spec, version=VmomiSupport.newestVersions.GetName("vim")))


def _manifest_config(fake: FakeBackend, name: str) -> dict[str, Any]:
    """The vm_config a backup records of ``name``, through JSON as the manifest stores it."""
    vm = fake.find(name)
    props = fake.props(vm, BACKUP_PROPERTIES)
    return dict(json.loads(json.dumps(_summary(props, fake.source_props(vm), name))))


def test_a_restore_builds_the_spec_a_clone_builds() -> None:
    fake = FakeBackend(datastores=(DS,))
    fake_hardware_source(fake, "src")
    fake.find("src").config["config.firmware"] = "efi"
    fake.find("src").config["config.bootOptions.efiSecureBootEnabled"] = "true"
    config = _manifest_config(fake, "src")
    assert config["carried"]["extra_config"] == {"disk.EnableUUID": "TRUE"}
    assert [d["type"] for d in config["carried"]["devices"]] == [
        "VirtualCdrom",
        "VirtualCdrom",
        "VirtualSerialPort",
        "VirtualSerialPort",
        "VirtualUSBController",
        "VirtualUSBXHCIController",
    ]
    clone = _spec(fake.source_props(fake.find("src")))
    restore = _spec(source_of(config, PATHS))
    assert restore == clone
    for text in (
        b"startConnected>false<",
        b"disk.EnableUUID",
        b"<pciSlotNumber>192<",
        b"efiSecureBootEnabled>true<",
    ):
        assert text in restore, text


def test_a_manifest_without_the_record_restores_as_before() -> None:
    fake = FakeBackend(datastores=(DS,))
    fake_hardware_source(fake, "src")
    config = _manifest_config(fake, "src")
    del config["carried"]
    source = source_of(config, PATHS)
    d = vim().vm.device
    kinds = {type(dev) for dev in source["config.hardware.device"]}
    assert kinds.isdisjoint(
        {d.VirtualCdrom, d.VirtualSerialPort, d.VirtualUSBController, d.VirtualUSBXHCIController}
    )
    spec = _spec(source)
    assert b"VirtualCdrom" not in spec and b"disk.EnableUUID" not in spec and b"pciSlotNumber" not in spec
    assert b"VirtualDisk" in spec and b"VirtualVmxnet3" in spec
