"""The .vmx format, the new VM's .vmx written from a ConfigSpec, and a source VM read back from its .vmx."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceso.backends.vmomi import vim as _vim
from ceso.errors import InvalidInputError
from ceso.operations.provision import ProvisionOptions, build_config_spec
from ceso.ssh.guestos import guest_id_from_vmx, vmx_guest_os
from ceso.ssh.vmx import Vmx, bios_uuid, escape_value, parse_vmx, render_vmx, unescape_value, uuid_from_bios
from ceso.ssh.vmxspec import DiskFacts, parse_descriptor, properties_from_vmx, vmx_from_spec
from tests.support.sshd import EMULATORS

FIXTURES = Path(__file__).with_name("fixtures")
vim = _vim()


def test_escaping_round_trips_and_keeps_one_line() -> None:
    raw = 'quote " pipe | newline \n tab \t done'
    escaped = escape_value(raw)
    assert escaped == "quote |22 pipe |7C newline |0A tab |09 done"
    assert unescape_value(escaped) == raw
    text = render_vmx(Vmx([("displayName", raw), ("guestinfo.x", "é ü")])).decode()
    assert text.splitlines() == ['.encoding = "UTF-8"', f'displayName = "{escaped}"', 'guestinfo.x = "é ü"']
    assert parse_vmx(text)["displayname"] == raw


def test_parse_template_vmx() -> None:
    vmx = parse_vmx((FIXTURES / "template.vmx").read_text())
    assert vmx["displayName"] == 'tmpl "quoted" | pipe'
    assert vmx["memsize"] == "4096"  # keys are case-insensitive, the last one wins
    assert vmx["guestinfo.note"] == "line one\nline two"
    assert vmx.flag("scsi0.present") and not vmx.flag("nvme0.present")
    with pytest.raises(InvalidInputError):
        parse_vmx("this is not vmx\n")
    with pytest.raises(InvalidInputError):
        Vmx([("bad key", "x")])


def test_bios_uuid_form() -> None:
    assert (
        bios_uuid("564d096b-b0ff-56dd-bd74-a403972bf337") == "56 4d 09 6b b0 ff 56 dd-bd 74 a4 03 97 2b f3 37"
    )
    assert (
        uuid_from_bios("56 4d 09 6b b0 ff 56 dd-bd 74 a4 03 97 2b f3 37")
        == "564d096b-b0ff-56dd-bd74-a403972bf337"
    )
    with pytest.raises(InvalidInputError):
        bios_uuid("nope")


@pytest.mark.parametrize(
    ("guest_id", "vmx"),
    [
        ("ubuntu64Guest", "ubuntu-64"),
        ("centos7_64Guest", "centos7-64"),
        ("otherLinux64Guest", "otherlinux-64"),
        ("otherGuest64", "other-64"),
        ("otherGuest", "other"),
        ("debian12_64Guest", "debian12-64"),
        ("windows9Server64Guest", "windows9srv-64"),
        ("windows8Server64Guest", "windows8srv-64"),
        ("windows7Server64Guest", "windows7srv-64"),
        ("winLonghorn64Guest", "longhorn-64"),
        ("windowsHyperVGuest", "winHyperV"),
        ("vmwarePhoton64Guest", "vmware-photon-64"),
    ],
)
def test_guest_os_names_both_ways(guest_id: str, vmx: str) -> None:
    assert vmx_guest_os(guest_id) == vmx
    assert guest_id_from_vmx(vmx) == guest_id
    assert guest_id_from_vmx(vmx.upper()) == guest_id  # hostd reads the value case-insensitively


def test_guest_os_table_is_hostds() -> None:
    """Every value of hostd's table (transcribed beside the emulators) reads as hostd reads it."""
    rows = [
        line.split()
        for line in (EMULATORS / "guest_os_keys.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(rows) > 200
    for vmx, guest_id, written in rows:
        assert guest_id_from_vmx(vmx) == guest_id, vmx
        if written == "1":
            assert vmx_guest_os(guest_id) == vmx, guest_id
    assert guest_id_from_vmx("windows99-64") == "windows99-64"  # unknown: carried unchanged
    assert vmx_guest_os("windows99-64") == "windows99-64"
    with pytest.raises(InvalidInputError, match=r"no \.vmx guestOS value"):
        vmx_guest_os("frobnix64Guest")


def test_descriptor_capacity_and_thinness() -> None:
    facts = parse_descriptor((FIXTURES / "descriptor_thin.vmdk").read_text())
    assert facts == DiskFacts(capacity_bytes=16 * 2**30, thin=True)
    with pytest.raises(InvalidInputError):
        parse_descriptor("")


def _source() -> dict[str, object]:
    vmx = parse_vmx((FIXTURES / "template.vmx").read_text())
    sizes = {
        "/vmfs/volumes/ds1/tmpl/tmpl.vmdk": DiskFacts(16 * 2**30, True),
        "/vmfs/volumes/other ds/shared/data.vmdk": DiskFacts(2**30, False),
    }
    return properties_from_vmx(vmx, vm_dir="/vmfs/volumes/ds1/tmpl", disk_facts=sizes.__getitem__)


def test_source_properties_from_vmx() -> None:
    props = _source()
    devices = props["config.hardware.device"]
    assert isinstance(devices, list)
    scsi, disk0, disk1, nic = devices
    assert isinstance(scsi, vim.vm.device.ParaVirtualSCSIController) and scsi.busNumber == 0
    assert disk0.backing.fileName == "[ds1] tmpl/tmpl.vmdk" and disk0.capacityInKB == 16 * 2**20
    assert disk0.backing.thinProvisioned and disk0.controllerKey == scsi.key and disk0.unitNumber == 0
    assert disk1.backing.fileName == "[other ds] shared/data.vmdk" and disk1.unitNumber == 1
    assert isinstance(nic, vim.vm.device.VirtualVmxnet3) and nic.macAddress == "00:0c:29:ab:cd:ef"
    assert nic.backing.deviceName == "VM Network"
    assert props["config.hardware.numCPU"] == 2 and props["config.hardware.memoryMB"] == 4096
    assert props["config.guestId"] == "ubuntu64Guest" and props["config.firmware"] == "efi"
    assert props["config.version"] == "vmx-13"
    assert props["config.uuid"] == "564d096b-b0ff-56dd-bd74-a403972bf337"
    assert [(o.key, o.value) for o in props["config.extraConfig"]] == [
        ("guestinfo.note", "line one\nline two")
    ]  # type: ignore[attr-defined]


def test_new_vm_vmx_from_the_shared_config_spec() -> None:
    """The SSH route writes what the API route would create: same spec, as a .vmx."""
    opts = ProvisionOptions(name="web 'a' $(b)", cpus=4, memory_mb=8192, network="Prod net")
    spec = build_config_spec(
        source=_source(),
        opts=opts,
        datastore="ds1",
        disk_paths=["[ds1] web 'a' $(b)/web 'a' $(b).vmdk", "[ds1] web 'a' $(b)/web 'a' $(b)_1.vmdk"],
        macs=["00:50:56:01:02:03"],
        extra_config={
            "guestinfo.metadata": "H4sI" + "A" * 70000,
            "guestinfo.metadata.encoding": "gzip+base64",
            "ceso.job-id": "j1",
        },
    )
    vmx = vmx_from_spec(spec, vm_dir="/vmfs/volumes/ds1/web 'a' $(b)")
    assert vmx["displayName"] == "web 'a' $(b)" and vmx["guestOS"] == "ubuntu-64"
    assert vmx["numvcpus"] == "4" and vmx["memSize"] == "8192" and vmx["firmware"] == "efi"
    assert vmx["virtualHW.version"] == "13" and vmx["config.version"] == "8"
    assert vmx["uuid.bios"] == bios_uuid(spec.uuid) and spec.uuid != "564d096b-b0ff-56dd-bd74-a403972bf337"
    assert "uuid.location" not in vmx  # ESXi writes it for the new location itself
    assert vmx["scsi0.virtualDev"] == "pvscsi" and vmx["scsi0:0.fileName"] == "web 'a' $(b).vmdk"
    assert vmx["scsi0:1.fileName"] == "web 'a' $(b)_1.vmdk"
    assert vmx["ethernet0.virtualDev"] == "vmxnet3" and vmx["ethernet0.networkName"] == "Prod net"
    assert vmx["ethernet0.addressType"] == "static" and vmx["ethernet0.address"] == "00:50:56:01:02:03"
    assert "ethernet0.generatedAddress" not in vmx
    assert len(vmx["guestinfo.metadata"]) == 70004 and vmx["ceso.job-id"] == "j1"
    text = render_vmx(vmx).decode()
    assert all(len(line) < 71000 for line in text.splitlines())
    back = {k: v for k, v in parse_vmx(text).items() if k != ".encoding"}
    assert back == dict(vmx.items())
    generated = vmx_from_spec(spec, vm_dir="/vmfs/volumes/ds1/x", generated_macs=True)
    assert generated["ethernet0.addressType"] == "generated" and "ethernet0.address" not in generated


def test_devices_the_vmx_cannot_hold_are_refused() -> None:
    spec = vim.vm.ConfigSpec(
        name="x",
        deviceChange=[
            vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualHdAudioCard(key=-1))
        ],
    )
    with pytest.raises(InvalidInputError, match="cannot write"):
        vmx_from_spec(spec, vm_dir="/vmfs/volumes/ds/x")


@pytest.mark.parametrize(
    ("lines", "refused"),
    [
        (
            'ide1:0.present = "TRUE"\nide1:0.deviceType = "cdrom-floppy"\n',
            r'ide1:0\.deviceType = "cdrom-floppy"',
        ),
        ('serial0.present = "TRUE"\nserial0.fileType = "thinprint"\n', r'serial0\.fileType = "thinprint"'),
        ('serial0.present = "TRUE"\n', r'serial0\.fileType = ""'),
    ],
)
def test_a_cdrom_or_serial_port_of_an_unknown_kind_is_refused_not_guessed(lines: str, refused: str) -> None:
    vmx = parse_vmx((FIXTURES / "template.vmx").read_text() + lines)
    with pytest.raises(InvalidInputError, match=refused):
        properties_from_vmx(vmx, vm_dir="/vmfs/volumes/ds1/tmpl", disk_facts=lambda _: DiskFacts(2**30, True))


def test_a_pipe_serial_port_and_a_host_cdrom_round_trip() -> None:
    """Backings the clone scenarios do not use: a named pipe and the host's own CD-ROM drive."""
    text = (FIXTURES / "template.vmx").read_text() + (
        'ide1:0.present = "TRUE"\nide1:0.deviceType = "atapi-cdrom"\n'
        'ide1:0.fileName = "/vmfs/devices/cdrom/mpx.vmhba0:C0:T0:L0"\n'
        'serial0.present = "TRUE"\nserial0.fileType = "pipe"\nserial0.fileName = "/tmp/com1"\n'
        'serial0.pipe.endPoint = "client"\nserial0.startConnected = "FALSE"\n'
    )
    props = properties_from_vmx(
        parse_vmx(text), vm_dir="/vmfs/volumes/ds1/tmpl", disk_facts=lambda _: DiskFacts(2**30, True)
    )
    devices = props["config.hardware.device"]
    (cdrom,) = [d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)]
    (serial,) = [d for d in devices if isinstance(d, vim.vm.device.VirtualSerialPort)]
    assert isinstance(cdrom.backing, vim.vm.device.VirtualCdrom.AtapiBackingInfo)
    assert (
        cdrom.backing.deviceName == "/vmfs/devices/cdrom/mpx.vmhba0:C0:T0:L0" and cdrom.controllerKey == 201
    )
    assert (serial.backing.pipeName, serial.backing.endpoint) == ("/tmp/com1", "client")
    assert not serial.connectable.startConnected
    spec = vim.vm.ConfigSpec(
        name="x",
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=d) for d in (cdrom, serial)],
    )
    vmx = vmx_from_spec(spec, vm_dir="/vmfs/volumes/ds1/x")
    assert vmx["ide1:0.deviceType"] == "atapi-cdrom" and vmx["ide1:0.fileName"] == cdrom.backing.deviceName
    assert vmx["serial0.fileType"] == "pipe" and vmx["serial0.pipe.endPoint"] == "client"
    assert vmx["serial0.fileName"] == "/tmp/com1" and vmx["serial0.startConnected"] == "FALSE"
