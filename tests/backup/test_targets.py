"""Every target type honours one contract: atomic commit, read back, list, size, delete, abort."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from ceso.backup.targets.base import Target
from ceso.errors import NotFoundError, ThumbprintMismatchError
from tests.backup.conftest import sftp_credentials
from tests.conftest import unique
from tests.support.services import S3Server, Sshd
from tests.support.simulator import SimulatorHost


def make_target(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> Target:
    if kind == "local":
        from ceso.backup.targets.local import LocalTarget

        (tmp_path / "store").mkdir()
        return LocalTarget("t-local", tmp_path / "store")
    if kind == "sftp":
        from ceso.backup.targets.sftp import SftpTarget

        sshd: Sshd = request.getfixturevalue("sshd")
        root = sshd.root / unique("t")
        root.mkdir()
        return SftpTarget(
            "t-sftp",
            host="127.0.0.1",
            port=sshd.port,
            username=sshd.user,
            root=str(root),
            host_key=sshd.fingerprint(),
            credentials=sftp_credentials(sshd),
        )
    if kind == "s3":
        from ceso.backup.targets.s3 import S3Target

        s3: S3Server = request.getfixturevalue("s3_server")
        bucket = unique("bkt")
        s3.make_bucket(bucket)
        return S3Target(
            "t-s3",
            bucket=bucket,
            prefix="ceso/backups",
            endpoint=s3.endpoint,
            region=None,
            credentials={"access_key_id": "test", "secret_access_key": "test"},
            part_size=5 << 20,
        )
    from ceso.backup.targets.datastore import DatastoreTarget
    from ceso.esxi.client import EsxiClient
    from ceso.hosts.endpoint import parse_endpoint

    sim: SimulatorHost = request.getfixturevalue("sim")
    client = EsxiClient(
        name="sim", endpoint=parse_endpoint(sim.url), username="root", password=lambda: "pw", thumbprint=None
    )
    return DatastoreTarget("t-ds", client=client, datastore="LocalDS_0", root=unique("backups"))


@pytest.fixture(params=["local", "sftp", "s3", "datastore"])
def target(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Target]:
    t = make_target(request.param, request, tmp_path)
    yield t
    t.close()


def test_target_contract(target: Target) -> None:
    assert target.check()["writable"] is True
    big = os.urandom(11 << 20)  # several S3 parts
    writer = target.open_write("vm-a/set-1/disk-flat.vmdk.zst")
    for i in range(0, len(big), 1 << 20):
        writer.write(big[i : i + (1 << 20)])
    assert target.list("vm-a/") == []  # nothing visible before commit
    assert writer.commit() == len(big)
    small = target.open_write("vm-a/set-1/manifest.json")
    small.write(b"{}")
    small.commit()
    aborted = target.open_write("vm-a/set-1/half.bin")
    aborted.write(b"x" * 1000)
    aborted.abort()
    assert target.list("vm-a/") == ["vm-a/set-1/disk-flat.vmdk.zst", "vm-a/set-1/manifest.json"]
    assert target.size("vm-a/set-1/manifest.json") == 2 and target.size("vm-a/nope") is None
    reader = target.open_read("vm-a/set-1/disk-flat.vmdk.zst")
    got = bytearray()
    while chunk := reader.read(300_000):
        got += chunk
    reader.close()
    assert bytes(got) == big
    with pytest.raises(NotFoundError):
        target.open_read("vm-a/set-1/missing").read(1)
    assert target.delete_prefix("vm-a/set-1/") == 2
    assert target.list("") == []


def test_sftp_refuses_an_unpinned_host_key(sshd: Sshd) -> None:
    from ceso.backup.targets.sftp import SftpTarget

    t = SftpTarget(
        "t",
        host="127.0.0.1",
        port=sshd.port,
        username=sshd.user,
        root=str(sshd.root),
        host_key="SHA256:" + "A" * 43,
        credentials=sftp_credentials(sshd),
    )
    with pytest.raises(ThumbprintMismatchError, match="not the pinned"):
        t.list()


def test_s3_parts_grow_with_the_object(request: pytest.FixtureRequest, tmp_path: Any) -> None:
    """Parts double every GROW_EVERY parts, so a stream of unknown size fits S3's 10,000 parts."""
    from ceso.backup.targets.s3 import MAX_PART, MAX_PARTS, PART_SIZE, part_size_of

    assert sum(part_size_of(n) for n in range(1, MAX_PARTS + 1)) >= 5 << 40  # S3's largest object
    assert part_size_of(1) == PART_SIZE and part_size_of(MAX_PARTS) == MAX_PART

    target = make_target("s3", request, tmp_path)
    target.grow_every = 2  # parts of 5, 5, 10, 10, 20 MiB ...
    data = os.urandom(27 << 20)
    writer = target.open_write("vm-a/set-1/big.vmdk")
    for i in range(0, len(data), 3 << 20):
        writer.write(data[i : i + (3 << 20)])
    assert writer.commit() == len(data)
    reader = target.open_read("vm-a/set-1/big.vmdk")
    assert reader.read(-1) == data
    reader.close()
    head = target._s3.head_object(Bucket=target.bucket, Key=target._key("vm-a/set-1/big.vmdk"))
    assert head["ETag"].strip('"').endswith("-4")  # 5 + 5 + 10 + 7 MiB; fixed 5 MiB parts would be 6
    target.close()
