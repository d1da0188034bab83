"""Datastore locations and paths (pure): what is refused, and which VM owns a path."""

from __future__ import annotations

import pytest

from ceso.datastore.owners import owner_of
from ceso.datastore.paths import DatastoreRef, clean_path, parse_location
from ceso.errors import InvalidInputError
from ceso.esxi.inventory import DiskInfo, VmSummary


def test_locations() -> None:
    assert parse_location("esxi-a:[datastore1]", "iso/u.iso") == DatastoreRef(
        "esxi-a", "datastore1", "iso/u.iso"
    )
    assert parse_location("esxi-a:[data store] iso/", root_ok=True) == DatastoreRef(
        "esxi-a", "data store", "iso"
    )
    assert parse_location("esxi-a:[ds1]", None, root_ok=True).path == ""
    for bad in ("esxi-a", "[ds1] x", "esxi-a:ds1", "esxi-a:[a/b]", "a b:[ds]"):
        with pytest.raises(InvalidInputError):
            parse_location(bad, "x")
    with pytest.raises(InvalidInputError, match="give the path once"):
        parse_location("esxi-a:[ds1] a", "b")


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "..", "../x", "a/../../x", "a/./b", "a//b", "a\\b", "a\nb", "", "/"]
)
def test_paths_that_leave_or_blur_the_datastore_are_refused(path: str) -> None:
    with pytest.raises(InvalidInputError):
        clean_path(path)


def test_clean_paths() -> None:
    assert clean_path("iso/") == "iso"
    assert clean_path("a b/c..d.iso") == "a b/c..d.iso"
    assert clean_path("", root_ok=True) == ""


def _vm(name: str, folder: str, disks: list[str]) -> VmSummary:
    return VmSummary(
        name=name, host="h", uuid=None, power_state="poweredOff", cpus=1, memory_mb=4, guest_id=None,
        template=False, vmx_path=f"[ds1] {folder}/{name}.vmx",
        disks=[DiskInfo(path=d, capacity_bytes=1, thin=True) for d in disks],
    )  # fmt: skip


def test_owner_of_a_path() -> None:
    web = _vm("web", "web", ["[ds1] web/web.vmdk", "[ds1] shared/data.vmdk", "[ds2] web/other.vmdk"])
    vms = [web]
    for path in ("web", "web/web.vmx", "web/web-flat.vmdk", "web/anything", "shared/data.vmdk",
                 "shared/data-flat.vmdk", "shared"):  # fmt: skip
        assert owner_of(path, "ds1", vms) is web, path
    for path in ("webx", "shared/other.iso", "iso/web.vmx"):
        assert owner_of(path, "ds1", vms) is None, path
    assert owner_of("web/other.vmdk", "ds2", vms) is web
    assert owner_of("web/web.vmx", "ds2", vms) is None  # another datastore's web/ folder is not the VM's
