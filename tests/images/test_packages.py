"""Reading image packages: OVAs and VMDKs made by qemu-img (not by ceso) become the same bytes,
packages ceso cannot import are refused before their disks are read, digests are checked."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from ceso.errors import InvalidInputError, TransientError
from ceso.images.ovf import parse_descriptor
from ceso.images.package import open_package
from ceso.images.source import check_source
from ceso.images.vmdk import write_thin
from tests.support.images import MIB, https_server, make_ova, make_raw, ovf_descriptor, stream_vmdk


def _convert(pkg_path: Path, tmp_path: Path, **kw: object) -> list[bytes]:
    out = []
    with open_package(str(pkg_path), **kw) as package:  # type: ignore[arg-type]
        for i, disk in enumerate(package.disks()):
            flat = tmp_path / f"flat{i}"
            with open(flat, "wb") as f:
                write_thin(disk.reader, f)
            out.append(flat.read_bytes())
        package.finish()
    return out


def test_a_stream_optimized_vmdk_becomes_a_thin_flat_disk_with_the_same_bytes(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "a.raw", 3 * MIB)
    stream_vmdk(tmp_path / "a.raw", tmp_path / "a.vmdk")
    with open(tmp_path / "a.vmdk", "rb") as src, open(tmp_path / "flat", "wb") as out:
        header = write_thin(src, out)
    assert header.capacity_bytes == len(raw)
    assert (tmp_path / "flat").read_bytes() == raw
    # Thin: only the written grains take blocks (3 stretches of 64 KiB, each over at most 2 grains).
    assert (tmp_path / "flat").stat().st_blocks * 512 <= 6 * 64 * 1024


def test_an_ova_is_read_disk_by_disk_and_its_manifest_checked(tmp_path: Path) -> None:
    disks = [make_raw(tmp_path / "x", 2 * MIB, seed=1), make_raw(tmp_path / "y", 1 * MIB, seed=2)]
    ova = make_ova(tmp_path, "noble", disks)
    digest = hashlib.sha256(ova.read_bytes()).hexdigest()
    assert _convert(ova, tmp_path, sha256=digest) == disks
    with open_package(str(ova)) as package:
        image = package.image
    assert (image.cpus, image.memory_mb, image.guest_id, image.scsi, image.nics) == (
        2, 1024, "ubuntu64Guest", "pvscsi", ["vmxnet3"]
    )  # fmt: skip
    assert sorted(image.dropped_properties) == sorted(
        ["instance-id", "hostname", "seedfrom", "public-keys", "user-data", "password"]
    )


def test_a_disk_that_differs_from_the_manifest_or_sha256_is_refused(tmp_path: Path) -> None:
    disks = [make_raw(tmp_path / "x", 1 * MIB)]
    ova = make_ova(tmp_path, "bad", disks, corrupt="bad-disk0.vmdk")
    with pytest.raises(InvalidInputError, match="does not match the package's manifest"):
        _convert(ova, tmp_path)
    good = make_ova(tmp_path, "good", disks)
    with pytest.raises(InvalidInputError, match="not the 00"):
        _convert(good, tmp_path, sha256="00" * 32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.replace("</VirtualSystem>", '</VirtualSystem><VirtualSystem ovf:id="b"><Info/></VirtualSystem>'), "2 virtual machines"),
        (lambda d: d.replace('ovf:key="hostname"', 'ovf:key="appliance.root-password"'), "vApp property 'appliance.root-password'"),
        (lambda d: d.replace("#streamOptimized", "#sparse"), "not a stream-optimized VMDK"),
        (lambda d: d.replace("<Envelope ", "<!DOCTYPE x [<!ENTITY a 'b'>]><Envelope "), "DTD"),
    ],
)  # fmt: skip
def test_unsupported_packages_are_refused_before_any_disk_is_read(tmp_path: Path, change, message) -> None:  # type: ignore[no-untyped-def]
    descriptor = change(ovf_descriptor("odd", [("odd-disk0.vmdk", 1, MIB)]))
    with pytest.raises(InvalidInputError, match=message):
        parse_descriptor(descriptor)
    ova = make_ova(tmp_path, "odd", [make_raw(tmp_path / "r", MIB)], descriptor=descriptor)
    with pytest.raises(InvalidInputError, match=message):
        open_package(str(ova))


def test_a_lone_vmdk_gets_a_descriptor_and_a_flat_vmdk_is_refused(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "d.raw", 2 * MIB)
    stream_vmdk(tmp_path / "d.raw", tmp_path / "disk.vmdk")
    assert _convert(tmp_path / "disk.vmdk", tmp_path) == [raw]
    (tmp_path / "flat.vmdk").write_bytes(raw)
    with pytest.raises(InvalidInputError, match="KDMV"):
        open_package(str(tmp_path / "flat.vmdk"))


def test_a_truncated_stream_is_an_error_not_a_short_disk() -> None:
    raw = io.BytesIO()
    with pytest.raises(InvalidInputError, match="ends in the middle"):
        write_thin(io.BytesIO(b"KDMV" + b"\0" * 100), raw)


@pytest.mark.parametrize(
    "source", ["relative/x.ova", "http://h/x.ova", "https://u:p@h/x.ova", "/tmp/x.iso", "/tmp/x\n.ova"]
)
def test_a_source_must_be_an_absolute_path_or_an_https_url_of_a_known_kind(source: str) -> None:
    with pytest.raises(InvalidInputError, match="--from"):
        check_source(source)


def test_an_ovf_reads_its_disks_and_manifest_beside_it(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "d.raw", 2 * MIB)
    stream_vmdk(tmp_path / "d.raw", tmp_path / "noble-disk0.vmdk")
    vmdk = (tmp_path / "noble-disk0.vmdk").read_bytes()
    descriptor = ovf_descriptor("noble", [("noble-disk0.vmdk", len(vmdk), len(raw))])
    (tmp_path / "noble.ovf").write_text(descriptor)
    (tmp_path / "noble.mf").write_text(
        f"SHA256(noble.ovf)= {hashlib.sha256(descriptor.encode()).hexdigest()}\n"
        f"SHA256(noble-disk0.vmdk)= {hashlib.sha256(vmdk).hexdigest()}\n"
    )
    assert _convert(tmp_path / "noble.ovf", tmp_path) == [raw]
    (tmp_path / "noble-disk0.vmdk").write_bytes(vmdk[:-512] + b"\1" * 512)  # the footer changed
    with pytest.raises(InvalidInputError, match="does not match the package's manifest"):
        _convert(tmp_path / "noble.ovf", tmp_path)


def test_a_download_cut_midway_resumes_with_a_range_and_fails_where_ranges_are_not_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    raw = make_raw(tmp_path / "r", 2 * MIB)
    ova = make_ova(images, "noble", [raw])
    digest = hashlib.sha256(ova.read_bytes()).hexdigest()
    cut = ova.stat().st_size // 2
    with https_server(images, break_at=cut) as (base, ca):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        with open_package(f"{base}/noble.ova", sha256=digest) as package:
            download = package._opened[0].stream
            flats = []
            for disk in package.disks():
                with open(tmp_path / "flat", "wb") as out:
                    write_thin(disk.reader, out)
                flats.append((tmp_path / "flat").read_bytes())
            package.finish()  # the whole file's digest: the resumed bytes joined up exactly
        assert flats == [raw] and getattr(download, "resumes", None) == 1
    with https_server(images, break_at=cut, ranges=False) as (base, ca):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        with (
            pytest.raises(TransientError, match="does not take ranges"),
            open_package(f"{base}/noble.ova") as package,
        ):
            for disk in package.disks():
                disk.reader.drain()
